# R side of the glmmTMB backend: extract a glmmTMB fit into the same plain reply that
# harness_extract_mermod (backends/lme4/extract.R) writes, so one converter reads both.
#
# Sourced once per R worker (backends/lme4/worker.py) beside extract.R; harness_run calls
# harness_extract_glmmtmb for fits of kind "glmmTMB".
#
# glmmTMB estimates each random-effect block on its own scale: log-sds, then (for "us" blocks)
# correlation parameters that glmmTMB:::get_cor maps to the correlations; the gaussian
# dispersion betad is log(sigma^2). The harness reports sd/var/cor/cov, so their standard
# errors are carried over from TMB's sdreport covariance of those parameters by the delta
# method: J Sigma J' with J the Jacobian of the (analytic) map from the block's parameters to
# sd, var, cor and cov, by central differences (step 1e-5: an error of order 1e-10 relative).

harness_tmb_block_map <- function(theta, size, code) {
  # theta of one block -> c(sd_1..sd_n, var_1..var_n, cor_12, cor_13, .., cor_23, .., cov_12, ..)
  # (pairs in the order of harness.results.variance_parameters: upper triangle by row)
  sd <- exp(theta[seq_len(size)])
  if (size == 1L || code != "us") return(c(sd, sd^2))
  C <- diag(size)
  C[lower.tri(C)] <- glmmTMB:::get_cor(theta[-seq_len(size)])
  C <- C + t(C) - diag(size)
  cor <- t(C)[lower.tri(C)]
  pairs <- which(lower.tri(C), arr.ind = TRUE)  # (row, col) of t(C)'s lower triangle = (j, i)
  cov <- cor * sd[pairs[, 2]] * sd[pairs[, 1]]
  c(sd, sd^2, cor, cov)
}

harness_tmb_jacobian <- function(f, x, h = 1e-5) {
  y0 <- f(x)
  J <- matrix(0, length(y0), length(x))
  for (k in seq_along(x)) {
    e <- numeric(length(x)); e[k] <- h
    J[, k] <- (f(x + e) - f(x - e)) / (2 * h)
  }
  J
}

harness_tmb_varcorr <- function(fit) {
  # one block per random-effect term, in VarCorr's order, with the SEs of every scale
  vc <- glmmTMB::VarCorr(fit)$cond
  structs <- fit$modelInfo$reStruc$condReStruc
  sdr <- fit$sdr
  pf <- names(sdr$par.fixed)
  theta_at <- which(pf == "theta")
  theta <- sdr$par.fixed[theta_at]
  S <- if (is.null(sdr$cov.fixed)) NULL else sdr$cov.fixed[theta_at, theta_at, drop = FALSE]
  start <- 0L
  blocks <- vector("list", length(vc))
  for (i in seq_along(vc)) {
    v <- vc[[i]]
    nm <- colnames(v)
    size <- as.integer(structs[[i]]$blockSize)
    ntheta <- as.integer(structs[[i]]$blockNumTheta)
    code <- names(structs[[i]]$blockCode)
    if (!(code %in% c("us", "diag"))) stop("covariance structure ", code, " is not extracted")
    idx <- start + seq_len(ntheta)
    start <- start + ntheta
    th <- theta[idx]
    f <- function(t) harness_tmb_block_map(t, size, code)
    est <- unname(f(th))
    se <- rep(NA_real_, length(est))
    if (!is.null(S)) {
      J <- harness_tmb_jacobian(f, th)
      se <- sqrt(pmax(diag(J %*% S[idx, idx, drop = FALSE] %*% t(J)), 0))
    }
    part <- function(k) seq_len(size) + (k - 1L) * size
    correlated <- code == "us" && size > 1L
    npairs <- size * (size - 1L) / 2
    cor_at <- 2L * size + seq_len(npairs)
    blocks[[i]] <- list(
      group = names(vc)[[i]], names = nm, sd = est[part(1L)],
      sd_se = se[part(1L)], var_se = se[part(2L)],
      corr = if (correlated) as.numeric(attr(v, "correlation")) else NULL,
      cor_se = if (correlated) se[cor_at] else NULL,
      cov_se = if (correlated) se[cor_at + npairs] else NULL)
  }
  blocks
}

harness_tmb_sigma <- function(fit) {
  # gaussian sigma = exp(betad / 2): se(sigma) = sigma se(betad) / 2, se(sigma^2) = sigma^2 se(betad)
  sigma <- glmmTMB::sigma(fit)
  sdr <- fit$sdr
  at <- which(names(sdr$par.fixed) == "betad")
  se <- if (length(at) == 1L && !is.null(sdr$cov.fixed)) sqrt(sdr$cov.fixed[at, at]) else NA_real_
  list(sigma = sigma, sd_se = sigma * se / 2, var_se = sigma^2 * se)
}

harness_extract_glmmtmb <- function(fit) {
  gaussian <- family(fit)$family == "gaussian"
  reml <- isTRUE(fit$modelInfo$REML)
  fe <- glmmTMB::fixef(fit)$cond
  V <- as.matrix(vcov(fit)$cond)
  # single-level fits have no random effects (glmmTMB's VarCorr and ranef fail on them)
  has_re <- length(fit$modelInfo$reStruc$condReStruc) > 0L
  re <- if (has_re) as.data.frame(glmmTMB::ranef(fit, condVar = TRUE)) else
    data.frame(component = character(), grpvar = character(), term = character(),
               grp = character(), condval = numeric(), condsd = numeric())
  re <- re[re$component == "cond", , drop = FALSE]
  ll <- logLik(fit)
  k <- as.integer(attr(ll, "df"))
  sig <- if (gaussian) harness_tmb_sigma(fit) else NULL
  pd <- isTRUE(fit$sdr$pdHess)
  conv <- fit$fit
  grad <- tryCatch(fit$obj$gr(fit$fit$par), error = function(e) NULL)
  ngroups <- if (has_re) vapply(fit$modelInfo$reTrms$cond$flist, nlevels, 1L) else integer()
  list(
    fixed = harness_fixed_table(fe, V),
    thresholds = NULL,
    varcorr = if (has_re) harness_tmb_varcorr(fit) else list(),
    sigma = if (gaussian) sig$sigma else NULL,
    sigma_sd_se = if (gaussian) sig$sd_se else NULL,
    sigma_var_se = if (gaussian) sig$var_se else NULL,
    loglik = as.numeric(ll), df = k,
    # glmmTMB's REML criterion is -2 logLik of the REML fit, as lme4's REMLcrit
    reml_criterion = if (reml) -2 * as.numeric(ll) else NULL,
    deviance = if (reml) NULL else -2 * as.numeric(ll),
    aic = AIC(fit), bic = BIC(fit),
    nobs = as.integer(nobs(fit)),
    ngroups = harness_named(ngroups),
    ranef = list(group = as.character(re$grpvar), term = as.character(re$term),
                 level = as.character(re$grp), estimate = as.numeric(re$condval),
                 std_error = as.numeric(re$condsd)),
    singular = NULL,
    optimizer = "nlminb", evaluations = as.integer(conv$evaluations[["function"]]),
    opt_code = as.numeric(conv$convergence),
    # the model's Hessian must be positive definite for the fit to count as converged
    lme4_code = if (pd) 0L else 1L,
    conv_messages = if (pd) character() else
      "glmmTMB: the Hessian of the log-likelihood is not positive definite (fit$sdr$pdHess is FALSE)",
    optimizer_message = as.character(conv$message), optimizer_warnings = character(),
    max_grad_check = if (is.null(grad)) NA_real_ else max(abs(grad)),
    max_grad_raw = if (is.null(grad)) NA_real_ else max(abs(grad))
  )
}
