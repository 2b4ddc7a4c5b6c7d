* mlm-harness: lab1.stata1.4.cen_pois_ri
* Written by mlm-harness (backends/stata). Runs in Stata 15 or newer: the line
* version 15 below pins the e(b) names the harness reads (me* variance stripes /:var(_cons[g])).
version 15
set more off
* mlmh-results: @RESULTS@
capture file close mlmh_fh
file open mlmh_fh using "@RESULTS@", write text replace
file write mlmh_fh "mlmh-stata-results" _tab "1" _n
* ==== lab1.stata1.4.cen_pois_ri: lab1.stata1.4.cen_pois_ri ====
use "/data/censusmicroteaching11s.dta", clear
* derived variables (spec 'derive')
egen double occ_ind_gp = group(indus1ts occupat1t)
generate double rel_eth_gp = (((100 * cofbt) + (10 * eths1t)) + relgs1t)
egen double eth_in_occ = group(rel_eth_gp occ_ind_gp)
generate double female = cond(!missing(sex), (sex == 2), .)
generate double c_age = ((10 * agegpt) - 40)
generate double c_age2 = ((c_age ^ 2) - 1600)
generate double age_fem = (c_age * female)
generate double poor_health = cond(!missing(health1), (health1 >= 4), .)
generate double tory_points = . if !missing(numhrs)
replace tory_points = 0 if numhrs == -9
replace tory_points = 0 if numhrs == 1
replace tory_points = 1 if numhrs == 2
replace tory_points = 2 if numhrs == 3
replace tory_points = 3 if numhrs == 4
quietly datasignature
local mlmh_sig "`r(datasignature)'"
capture noisily mepoisson tory_points agegpt || occ_ind_gp:, intmethod(mvaghermite) intpoints(7)
local mlmh_rc = _rc
file write mlmh_fh "model" _tab `"lab1.stata1.4.cen_pois_ri"' _n
file write mlmh_fh "layout" _tab `"{"spec_id":"lab1.stata1.4.cen_pois_ri","command":"mepoisson","depvar":"tory_points","fixed_terms":["agegpt"],"noconstant":false,"options":["intmethod(mvaghermite)","intpoints(7)"],"equations":[{"level":"occ_ind_gp","group":"occ_ind_gp","effects":["(Intercept)"],"stata_effects":["_cons"],"covariance":null,"path":["occ_ind_gp"],"label_vars":["occ_ind_gp"],"factor":null,"text_vars":[]}],"fixed_styles":{},"group_names":{"occ_ind_gp":["(Intercept)"]},"correlated":[],"family":"poisson","link":"log","method":"ML","method_label":"MVAGHQ(7)","model":{"formula":"tory_points ~ agegpt + (1 | occ_ind_gp)","family":"poisson","link":"log","method":"ML","integration":"AGHQ(7)","cluster_se":null},"generated_ids":[],"structure_note":"","icc":false,"setup":[],"panel":null,"generated":{},"transforms":[],"weight":"","fixed_options":[]}"' _n
file write mlmh_fh "meta" _tab "data_sha256" _tab `"0000000000000000000000000000000000000000000000000000000000000000"' _n
file write mlmh_fh "meta" _tab "stata_version" _tab "`c(stata_version)'" _n
local mlmh_flavour = cond(c(MP), "MP", cond(c(SE), "SE", "BE/IC"))
file write mlmh_fh "meta" _tab "flavour" _tab "`mlmh_flavour'" _n
file write mlmh_fh "meta" _tab "date" _tab "`c(current_date)' `c(current_time)'" _n
file write mlmh_fh "meta" _tab "datasignature" _tab "`mlmh_sig'" _n
file write mlmh_fh "rc" _tab "`mlmh_rc'" _n
if `mlmh_rc' == 0 {
    file write mlmh_fh "macro" _tab "cmd" _tab `"`e(cmd)'"' _n
    file write mlmh_fh "macro" _tab "cmdline" _tab `"`e(cmdline)'"' _n
    file write mlmh_fh "macro" _tab "depvar" _tab `"`e(depvar)'"' _n
    file write mlmh_fh "macro" _tab "ivars" _tab `"`e(ivars)'"' _n
    file write mlmh_fh "macro" _tab "vce" _tab `"`e(vce)'"' _n
    file write mlmh_fh "macro" _tab "method" _tab `"`e(method)'"' _n
    file write mlmh_fh "macro" _tab "intmethod" _tab `"`e(intmethod)'"' _n
    file write mlmh_fh "scalar" _tab "N" _tab %21.0g (e(N)) _n
    file write mlmh_fh "scalar" _tab "ll" _tab %21.0g (e(ll)) _n
    file write mlmh_fh "scalar" _tab "converged" _tab %21.0g (e(converged)) _n
    file write mlmh_fh "scalar" _tab "rmse" _tab %21.0g (e(rmse)) _n
    file write mlmh_fh "scalar" _tab "rank" _tab %21.0g (e(rank)) _n
    file write mlmh_fh "scalar" _tab "k" _tab %21.0g (e(k)) _n
    file write mlmh_fh "scalar" _tab "N_clust" _tab %21.0g (e(N_clust)) _n
    file write mlmh_fh "scalar" _tab "ic" _tab %21.0g (e(ic)) _n
    file write mlmh_fh "scalar" _tab "n_quad" _tab %21.0g (e(n_quad)) _n
    file write mlmh_fh "scalar" _tab "df_r" _tab %21.0g (e(df_r)) _n
    file write mlmh_fh "scalar" _tab "sigma_u" _tab %21.0g (e(sigma_u)) _n
    file write mlmh_fh "scalar" _tab "sigma_e" _tab %21.0g (e(sigma_e)) _n
    matrix mlmh_b = e(b)
    matrix mlmh_V = e(V)
    local mlmh_names : colfullnames mlmh_b
    local mlmh_k = colsof(mlmh_b)
    forvalues i = 1/`mlmh_k' {
        local mlmh_ni : word `i' of `mlmh_names'
        file write mlmh_fh "b" _tab "`mlmh_ni'" _tab %21.0g (mlmh_b[1,`i']) _n
        forvalues j = 1/`i' {
            local mlmh_nj : word `j' of `mlmh_names'
            file write mlmh_fh "V" _tab "`mlmh_ni'" _tab "`mlmh_nj'" _tab %21.0g (mlmh_V[`i',`j']) _n
        }
    }
    capture noisily predict mlmh_re*, reffects reses(mlmh_se*)
    local mlmh_prc = _rc
    file write mlmh_fh "macro" _tab "predict_rc" _tab "`mlmh_prc'" _n
    if `mlmh_prc' == 0 {
        preserve
        quietly keep if e(sample)
        quietly bysort occ_ind_gp: keep if _n == 1
        local mlmh_n = _N
        file write mlmh_fh "ngroups" _tab `"occ_ind_gp"' _tab %12.0f (`mlmh_n') _n
        forvalues i = 1/`mlmh_n' {
            file write mlmh_fh "re" _tab `"occ_ind_gp"' _tab `"(Intercept)"' _tab %21.0g (occ_ind_gp[`i']) _tab %21.0g (mlmh_re1[`i']) _tab %21.0g (mlmh_se1[`i']) _n
        }
        restore
        drop mlmh_re* mlmh_se*
    }
}
file write mlmh_fh "end" _tab `"lab1.stata1.4.cen_pois_ri"' _n
file close mlmh_fh
