# Prints the pbkrtest Kenward-Roger references of tests/native/test_inference.py (PBKRTEST):
# lmer's REML fit at a tight optimum, then for each fixed effect get_Lb_ddf(m, e_j) and the
# adjusted SE sqrt(diag(vcovAdj(m))). Run: MLM_HARNESS_DATA=... Rscript tests/native/pbkrtest_reference.R
suppressMessages({library(lme4); library(pbkrtest); library(haven)})
dir <- Sys.getenv("MLM_HARNESS_DATA")
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))
run <- function(id, f, d) {
  m <- lmer(f, d, REML = TRUE, control = ctl)
  Va <- vcovAdj(m)
  p <- length(fixef(m))
  df <- sapply(seq_len(p), function(j) get_Lb_ddf(m, replace(numeric(p), j, 1)))
  cat(id, "REML criterion", sprintf("%.10f", REMLcrit(m)), "\n")
  cat("theta", sprintf("%.12g", getME(m, "theta")), "sigma", sprintf("%.12g", sigma(m)), "\n")
  print(data.frame(term = names(fixef(m)), df = sprintf("%.10g", df),
                   se_adj = sprintf("%.10g", sqrt(diag(as.matrix(Va))))))
}
gcse <- as.data.frame(zap_labels(read_dta(file.path(dir, "gcse.dta"))))
pop <- as.data.frame(zap_labels(read_dta(file.path(dir, "popular2.dta"))))
pop$ext_exp <- pop$extrav * pop$texp
run("gcse_ri_reml", gcse ~ lrt + girl + factor(schgend) + (1 | school), gcse)
run("gcse_rs_reml", gcse ~ lrt + girl + factor(schgend) + (1 + lrt | school), gcse)
run("popular_rs_reml", popular ~ sex + extrav + texp + ext_exp + (1 + extrav | class), pop)
nurses <- as.data.frame(zap_labels(read_dta(file.path(dir, "nurses.dta"))))
run("nurses_two_factors", stress ~ expcon + age + (1 | hospital) + (1 + expcon | hospital:ward),
    nurses)
