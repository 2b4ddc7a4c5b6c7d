# R side of the lme4 backend: run one fit with every condition captured, and extract everything
# the canonical FitResult needs as plain lists of atomic vectors (cheap to convert with rpy2).
#
# Sourced once per worker process (backends/lme4/worker.py). The self-contained scripts that
# results carry do not use this file: they call lmer/glmer/clmm directly and print summary(fit).
# Only the cluster-robust vcov helper is shared: rscript.py copies harness_cluster_vcov into
# scripts that need it, so both compute the same numbers.

harness_frame <- function(cols) {
  # Columns arrive as double or character vectors; numpy's NaN becomes R's NA, so that R's
  # missing-value rules (na.omit in model.frame, is.na) apply exactly as to data read from file.
  for (nm in names(cols)) {
    x <- cols[[nm]]
    if (is.double(x)) x[is.nan(x)] <- NA_real_
    cols[[nm]] <- x
  }
  data.frame(cols, check.names = FALSE, stringsAsFactors = FALSE)
}

harness_cluster_vcov <- function(fit, cluster, ols) {
  # Cluster-robust sandwich (Stata's CR1): bread %*% meat %*% bread * G/(G-1) [* (N-1)/(N-K) for
  # OLS]. Scores are X * working residual * working weight (for lm: X * residual), so one formula
  # covers lm and glm; aliased (NA) coefficients are left out.
  X <- model.matrix(fit)
  keep <- !is.na(coef(fit))
  X <- X[, keep, drop = FALSE]
  if (inherits(fit, "glm")) {
    u <- fit$weights * fit$residuals
  } else {
    u <- residuals(fit)
  }
  bread <- summary(fit)$cov.unscaled
  scores <- rowsum(X * u, cluster, reorder = FALSE)
  meat <- crossprod(scores)
  G <- nrow(scores)
  N <- nrow(X)
  K <- ncol(X)
  adj <- G / (G - 1)
  if (ols) adj <- adj * (N - 1) / (N - K)
  V <- bread %*% meat %*% bread * adj
  dimnames(V) <- list(colnames(X), colnames(X))
  V
}

harness_named <- function(x) {
  # a named numeric vector as list(names =, values =): names survive any conversion
  list(names = as.character(names(x)), values = unname(as.numeric(x)))
}

harness_run <- function(call_text, kind, cluster = NULL, ols = FALSE) {
  warnings <- character()
  messages <- character()
  handlers <- function(expr) {
    withCallingHandlers(expr,
      warning = function(w) {
        warnings <<- c(warnings, conditionMessage(w))
        invokeRestart("muffleWarning")
      },
      message = function(m) {
        messages <<- c(messages, sub("\n+$", "", conditionMessage(m)))
        invokeRestart("muffleMessage")
      })
  }
  describe <- function(e, what) {
    call <- conditionCall(e)
    where <- if (is.null(call)) "" else paste0(" in ", paste(deparse(call, nlines = 1L), collapse = ""))
    paste0(what, where, ": ", conditionMessage(e))
  }
  parsed <- tryCatch(parse(text = call_text, keep.source = FALSE)[[1]], error = function(e) e)
  if (inherits(parsed, "error")) {
    return(list(status = "error", message = describe(parsed, "R could not parse the call"),
                warnings = warnings, messages = messages))
  }
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(handlers(eval(parsed, envir = globalenv())), error = function(e) e)
  fit_r <- proc.time()[["elapsed"]] - t0
  if (inherits(fit, "error")) {
    return(list(status = "error", message = describe(fit, "R error"), warnings = warnings,
                messages = messages, fit_r = fit_r))
  }
  out <- tryCatch(handlers(switch(kind,
    lmer = , glmer = harness_extract_mermod(fit),
    clmm = harness_extract_clmm(fit),
    clm = harness_extract_clm(fit),
    glmmTMB = harness_extract_glmmtmb(fit),  # backends/glmmtmb/extract.R
    lm = , glm = {
      cl <- NULL
      if (!is.null(cluster)) {
        d <- get("d", envir = globalenv())
        cl <- d[[cluster]][match(rownames(model.frame(fit)), rownames(d))]
      }
      harness_extract_glm(fit, cl, ols)
    },
    stop("unknown fit kind ", kind))), error = function(e) e)
  if (inherits(out, "error")) {
    return(list(status = "error", message = describe(out, "extracting the results failed"),
                warnings = warnings, messages = messages, fit_r = fit_r))
  }
  out$status <- "ok"
  out$warnings <- warnings
  out$messages <- messages
  out$fit_r <- fit_r
  out$call <- paste(deparse(if (is.null(getCall(fit))) parsed else getCall(fit), width.cutoff = 500L),
                    collapse = " ")
  out
}

harness_fixed_table <- function(est, V) {
  se <- rep(NA_real_, length(est))
  names(se) <- names(est)
  common <- intersect(names(est), rownames(V))
  se[common] <- sqrt(diag(V)[common])
  list(names = names(est), estimate = unname(as.numeric(est)), std_error = unname(se))
}

harness_extract_mermod <- function(fit) {
  fe <- lme4::fixef(fit)
  V <- as.matrix(vcov(fit))
  vc <- lme4::VarCorr(fit)
  groups <- names(fit@cnms)  # real grouping factor names: "school" twice, where VarCorr says "school.1"
  blocks <- lapply(seq_along(vc), function(i) {
    v <- vc[[i]]
    list(group = groups[[i]], names = colnames(v), sd = unname(as.numeric(attr(v, "stddev"))),
         corr = if (ncol(v) > 1) as.numeric(attr(v, "correlation")) else NULL)
  })
  ll <- logLik(fit)
  reml <- lme4::isREML(fit)
  re <- as.data.frame(lme4::ranef(fit, condVar = TRUE))
  oi <- fit@optinfo
  grad <- oi$derivs$gradient
  scaled <- NA_real_
  if (!is.null(grad)) {
    # exactly what lme4's convergence check compares with its tolerance (lme4:::checkConv)
    sc <- tryCatch(with(oi$derivs, solve(chol(Hessian), gradient)), error = function(e) NULL)
    if (!is.null(sc)) scaled <- max(pmin(abs(sc), abs(grad)))
  }
  conv_messages <- as.character(unlist(oi$conv$lme4$messages))
  # lme4's logLik for nAGQ > 1 is built from deviance residuals and so omits the saturated
  # log-likelihood sum(log f(y | mu = y)) (lme4 issues #161, #567): zero for 0/1 outcomes, not
  # for counts. Add it back so every engine's log-likelihood has the same constant.
  saturated <- 0
  nagq <- if (lme4::isGLMM(fit)) as.integer(fit@devcomp$dims[["nAGQ"]]) else 1L
  if (lme4::isGLMM(fit) && nagq > 1L) {
    r <- fit@resp
    saturated <- -r$family$aic(r$y, r$n, r$y, r$weights, 0) / 2
    if (abs(saturated) > 0) {
      ll_note <- sprintf(paste0("lme4 prints logLik %.10g for this nAGQ = %d fit, which omits ",
                                "the saturated log-likelihood %.10g (lme4 issues #161, #567); ",
                                "the harness reports their sum %.10g, on the constant of ",
                                "Laplace fits, Stata and native"),
                         as.numeric(ll), nagq, saturated, as.numeric(ll) + saturated)
    }
  }
  ll_full <- as.numeric(ll) + saturated
  k <- as.integer(attr(ll, "df"))
  list(
    fixed = harness_fixed_table(fe, V),
    thresholds = NULL,
    varcorr = blocks,
    sigma = if (lme4::isLMM(fit)) sigma(fit) else NULL,
    loglik = ll_full, df = k,
    reml_criterion = if (reml) lme4::REMLcrit(fit) else NULL,
    deviance = if (reml) NULL else -2 * ll_full,
    aic = AIC(fit) - 2 * saturated, bic = BIC(fit) - 2 * saturated,
    nobs = as.integer(nobs(fit)),
    loglik_note = if (saturated != 0) ll_note else NULL,
    ngroups = harness_named(lme4::ngrps(fit)),
    ranef = list(group = as.character(re$grpvar), term = as.character(re$term),
                 level = as.character(re$grp), estimate = as.numeric(re$condval),
                 std_error = as.numeric(re$condsd)),
    singular = lme4::isSingular(fit),
    optimizer = oi$optimizer, evaluations = as.integer(oi$feval),
    opt_code = as.numeric(oi$conv$opt),
    lme4_code = if (is.null(oi$conv$lme4$code)) 0L else as.integer(oi$conv$lme4$code),
    conv_messages = conv_messages,
    optimizer_message = if (is.null(oi$message)) character() else as.character(oi$message),
    optimizer_warnings = as.character(unlist(oi$warnings)),
    max_grad_check = scaled,
    max_grad_raw = if (is.null(grad)) NA_real_ else max(abs(grad)),
    inference = if (lme4::isLMM(fit)) harness_inference_lmm(fit) else NULL
  )
}

harness_inference_lmm <- function(fit) {
  # What R users read for inference on an LMM's fixed effects: confint(method = "Wald") (z, at
  # lme4's vcov) and, when lmerTest is installed, its Satterthwaite df and p-values (lmerTest
  # refits nothing: as_lmerModLmerTest adds the deviance function and its Hessian at the fit).
  # Profile intervals are not computed (a profile is many refits; see issue 15's report).
  t0 <- proc.time()[["elapsed"]]
  ci <- stats::confint(fit, parm = "beta_", method = "Wald", level = 0.95)
  wald <- list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
               level = 0.95)
  satt <- NULL
  note <- NULL
  if (!requireNamespace("lmerTest", quietly = TRUE)) {
    note <- "lmerTest is not installed: no Satterthwaite df (scripts/bootstrap.sh installs it)"
  } else {
    co <- tryCatch(summary(lmerTest::as_lmerModLmerTest(fit), ddf = "Satterthwaite")$coefficients,
                   error = function(e) e)
    if (inherits(co, "error")) {
      note <- paste("lmerTest could not compute Satterthwaite df:", conditionMessage(co))
    } else {
      satt <- list(names = rownames(co), df = unname(co[, "df"]),
                   statistic = unname(co[, "t value"]), p_value = unname(co[, "Pr(>|t|)"]),
                   version = as.character(utils::packageVersion("lmerTest")))
    }
  }
  kr <- harness_kenward_roger(fit)
  list(wald = wald, satterthwaite = satt, kenward_roger = kr$tests, note = c(note, kr$note),
       seconds = proc.time()[["elapsed"]] - t0)
}

# Above this many observations lme4's backend does not ask pbkrtest for Kenward-Roger df:
# pbkrtest's vcovAdj inverts the dense n x n marginal covariance (measured: 13 s of CPU for the
# GCSE random slope, n = 4059; 2 s for popular2, n = 2000), too slow for the course suite in CI.
# The native backend reports KR at any size up to its own cap (backends/native/kenward_roger.py).
HARNESS_KR_MAX_NOBS <- 2500L

harness_kenward_roger <- function(fit) {
  # lmerTest's summary(ddf = "Kenward-Roger") (pbkrtest's vcovAdj and Lb_ddf): the KR df, the
  # t value on the adjusted SE and its p-value, for REML fits only (KR is a REML method).
  if (!lme4::isREML(fit)) return(list(tests = NULL, note = NULL))
  n <- stats::nobs(fit)
  if (n > HARNESS_KR_MAX_NOBS) {
    return(list(tests = NULL, note = sprintf(paste(
      "no Kenward-Roger df from pbkrtest: %d observations > %d (pbkrtest inverts the dense",
      "n x n covariance, too slow here); native computes them"), n, HARNESS_KR_MAX_NOBS)))
  }
  if (!requireNamespace("lmerTest", quietly = TRUE) || !requireNamespace("pbkrtest", quietly = TRUE)) {
    return(list(tests = NULL, note = paste("lmerTest or pbkrtest is not installed: no",
                                           "Kenward-Roger df (scripts/bootstrap.sh installs them)")))
  }
  co <- tryCatch(summary(lmerTest::as_lmerModLmerTest(fit), ddf = "Kenward-Roger")$coefficients,
                 error = function(e) e)
  if (inherits(co, "error")) {
    return(list(tests = NULL, note = paste("pbkrtest could not compute Kenward-Roger df:",
                                           conditionMessage(co))))
  }
  list(tests = list(names = rownames(co), df = unname(co[, "df"]),
                    statistic = unname(co[, "t value"]), p_value = unname(co[, "Pr(>|t|)"]),
                    version = as.character(utils::packageVersion("pbkrtest"))),
       note = NULL)
}

harness_extract_clmm <- function(fit) {
  V <- vcov(fit)
  vc <- ordinal::VarCorr(fit)
  blocks <- lapply(seq_along(vc), function(i) {
    v <- vc[[i]]
    nm <- colnames(v)
    corr <- attr(v, "correlation")
    if (is.null(corr) && ncol(v) > 1) corr <- stats::cov2cor(v)
    list(group = names(vc)[[i]], names = nm, sd = unname(as.numeric(attr(v, "stddev"))),
         corr = if (ncol(v) > 1) as.numeric(corr) else NULL)
  })
  re <- ordinal::ranef(fit, condVar = TRUE)
  g <- character(); term <- character(); level <- character(); est <- numeric(); se <- numeric()
  for (gr in names(re)) {
    df <- re[[gr]]
    cv <- attr(df, "condVar")
    for (j in seq_along(df)) {
      g <- c(g, rep(gr, nrow(df)))
      term <- c(term, rep(names(df)[j], nrow(df)))
      level <- c(level, rownames(df))
      est <- c(est, df[[j]])
      # ordinal reports conditional variances; a data.frame of them for scalar terms
      se <- c(se, if (is.data.frame(cv)) sqrt(cv[[j]]) else rep(NA_real_, nrow(df)))
    }
  }
  ll <- logLik(fit)
  grad <- fit$gradient
  H <- fit$Hessian
  ev <- tryCatch(eigen(H, only.values = TRUE)$values, error = function(e) NA_real_)
  sds <- unlist(lapply(blocks, function(b) b$sd))
  list(
    fixed = harness_fixed_table(fit$beta, V),
    thresholds = harness_fixed_table(fit$alpha, V),
    varcorr = blocks, sigma = NULL,
    loglik = as.numeric(ll), df = as.integer(attr(ll, "df")),
    reml_criterion = NULL, deviance = -2 * as.numeric(ll),
    aic = AIC(fit), bic = BIC(fit), nobs = as.integer(nobs(fit)),
    ngroups = harness_named(fit$dims$nlev.gf),
    ranef = list(group = g, term = term, level = level, estimate = est, std_error = se),
    singular = any(sds < 1e-4),
    optimizer = as.character(fit$control$method),
    evaluations = as.integer(fit$optRes$evaluations[[1]]),
    opt_code = as.numeric(fit$optRes$convergence),
    lme4_code = 0L, conv_messages = character(),
    optimizer_message = as.character(fit$optRes$message),
    optimizer_warnings = character(),
    max_grad_check = max(abs(grad)), max_grad_raw = max(abs(grad)),
    hessian_condition = if (all(is.finite(ev)) && min(ev) > 0) max(ev) / min(ev) else NA_real_
  )
}

harness_extract_clm <- function(fit) {
  V <- vcov(fit)
  ll <- logLik(fit)
  conv <- fit$convergence
  list(
    fixed = harness_fixed_table(fit$beta, V),
    thresholds = harness_fixed_table(fit$alpha, V),
    varcorr = list(), sigma = NULL,
    loglik = as.numeric(ll), df = as.integer(attr(ll, "df")),
    reml_criterion = NULL, deviance = -2 * as.numeric(ll),
    aic = AIC(fit), bic = BIC(fit), nobs = as.integer(nobs(fit)),
    ngroups = harness_named(numeric()),
    ranef = NULL, singular = NULL,
    optimizer = as.character(fit$control$method),
    evaluations = as.integer(fit$niter[[1]]),
    opt_code = as.numeric(conv$code),
    lme4_code = 0L,
    # clm always reports a message ("successful convergence"): a warning only when code != 0
    conv_messages = if (conv$code == 0) character() else as.character(unlist(conv$messages)),
    optimizer_message = as.character(unlist(conv$messages)), optimizer_warnings = character(),
    max_grad_check = fit$maxGradient, max_grad_raw = fit$maxGradient,
    hessian_condition = fit$cond.H
  )
}

harness_extract_glm <- function(fit, cluster, ols) {
  est <- coef(fit)
  aliased <- names(est)[is.na(est)]
  est <- est[!is.na(est)]
  V <- if (is.null(cluster)) vcov(fit) else harness_cluster_vcov(fit, cluster, ols)
  ll <- logLik(fit)
  n <- as.integer(nobs(fit))
  is_glm <- inherits(fit, "glm")
  gaussian <- !is_glm || family(fit)$family == "gaussian"
  # lm: the OLS sigma sqrt(RSS/(n-p)); gaussian glm (method ML): the ML sigma sqrt(RSS/n)
  sigma <- if (!gaussian) NULL else if (is_glm) sqrt(sum(residuals(fit, type = "response")^2) / n) else sigma(fit)
  list(
    fixed = harness_fixed_table(est, V),
    thresholds = NULL, varcorr = list(), sigma = sigma,
    loglik = as.numeric(ll), df = as.integer(attr(ll, "df")),
    reml_criterion = NULL, deviance = -2 * as.numeric(ll),
    aic = AIC(fit), bic = BIC(fit), nobs = n,
    ngroups = if (is.null(cluster)) harness_named(numeric()) else
      harness_named(c(cluster = length(unique(cluster)))),
    ranef = NULL, singular = NULL,
    optimizer = if (is_glm) "IRLS" else "QR",
    evaluations = if (is_glm) as.integer(fit$iter) else NA_integer_,
    opt_code = if (is_glm && !isTRUE(fit$converged)) 1 else 0,
    lme4_code = 0L, conv_messages = character(),
    optimizer_message = character(), optimizer_warnings = character(),
    max_grad_check = NA_real_, max_grad_raw = NA_real_,
    aliased = aliased
  )
}
