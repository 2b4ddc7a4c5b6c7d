# The R printouts of this folder: summary() of lmer, glmer and clmm fits of the course data, as R
# 4.2.2 with lme4 1.1-31 and ordinal printed them. Run from this folder:
#   MLM_HARNESS_DATA=/path/to/sgsss-2025 Rscript make_r_printouts.R
suppressMessages({library(lme4); library(ordinal)})
data_dir <- Sys.getenv("MLM_HARNESS_DATA")
d <- haven::read_dta(file.path(data_dir, "gcse.dta")); d <- as.data.frame(d)
d$sch_2 <- as.numeric(d$schgend == 2); d$sch_3 <- as.numeric(d$schgend == 3)
d$hi_gcse <- as.numeric(d$gcse > 0)
sink("r_lmer_reml_ri.txt"); print(summary(lmer(gcse ~ lrt + girl + sch_2 + sch_3 + (1 | school), data = d))); sink()
sink("r_lmer_ml_rs.txt"); print(summary(lmer(gcse ~ lrt + girl + sch_2 + sch_3 + (1 + lrt | school), data = d, REML = FALSE))); sink()
sink("r_lmer_factor_indep.txt"); print(summary(lmer(gcse ~ lrt + factor(schgend) + (1 | school) + (0 + lrt | school), data = d))); sink()
sink("r_glmer_laplace.txt"); print(summary(glmer(hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school), data = d, family = binomial))); sink()
sink("r_glmer_agq7.txt"); print(summary(glmer(hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school), data = d, family = binomial, nAGQ = 7))); sink()
p <- as.data.frame(haven::read_dta(file.path(data_dir, "popular2.dta")))
p$pop3 <- cut(p$popular, c(-Inf, 4, 6, Inf), labels = FALSE)
sink("r_clmm_laplace.txt"); print(summary(clmm(ordered(pop3) ~ extrav + sex + (1 | class), data = p))); sink()
n <- as.data.frame(haven::read_dta(file.path(data_dir, "nurses.dta")))
sink("r_lmer_3level.txt"); print(summary(lmer(stress ~ age + gender + (1 | hospital) + (1 | wardid), data = n, REML = FALSE))); sink()
