# Fit linear mixed models with lme4 on a CSV file and print estimates and timings.
#
# Usage:  Rscript benchmarks/lme4_fit.R <data.csv> <spec> [<spec> ...]
#
# Each <spec> is "key=value" pairs separated by ";" (a formula never contains ";"):
#   name=<label>            label echoed in the output
#   formula=<lme4 formula>  e.g. "y ~ x + factor(type) + (1 + x | municipality)"
#   reml=1|0                REML (default 1) or ML
#   weights=<column>        prior weights column (optional)
#   repeats=<k>             times lmer() is run; the median elapsed time is reported (default 1)
#   ranef=1|0               also print conditional modes and conditional SDs (default 0)
#   factors=<a,b>           columns converted with factor() after reading (optional)
#   control=default|tight   optimiser tolerances: lme4's defaults, or tight (nloptwrap BOBYQA
#                           with xtol_abs = ftol_abs = 1e-13, xtol_rel = 1e-12 (nloptr
#                           defaults to xtol_rel = 1e-4); for reference values)
#
# Only lmer() is timed (system.time, elapsed seconds), never the reading of the CSV.
# Output: one line per spec, "LME4 " followed by a JSON object (base R only; numbers with 17
# significant digits, NA/NaN/Inf as null).  Used by benchmarks/mixed_scale.py and
# tests/helpers/lme4_ref.py.

suppressPackageStartupMessages(library(lme4))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) {
  stop("usage: Rscript lme4_fit.R <data.csv> <spec> [<spec> ...]")
}
dat <- read.csv(args[1], stringsAsFactors = FALSE, check.names = FALSE)

parse_spec <- function(s) {
  out <- list(name = "model", reml = "1", repeats = "1", ranef = "0", weights = "",
              factors = "", control = "default")
  for (part in strsplit(s, ";", fixed = TRUE)[[1]]) {
    part <- trimws(part)
    if (part == "") next
    eq <- regexpr("=", part, fixed = TRUE)
    if (eq < 1) stop(paste("bad spec element:", part))
    out[[trimws(substr(part, 1, eq - 1))]] <- trimws(substr(part, eq + 1, nchar(part)))
  }
  if (is.null(out$formula)) stop("spec needs formula=")
  out
}

num <- function(x) {
  x <- as.numeric(x)
  if (length(x) == 0) return("[]")
  s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
  paste0("[", paste(s, collapse = ","), "]")
}
str1 <- function(x) {
  x <- gsub("\\\\", "\\\\\\\\", as.character(x))
  x <- gsub("\"", "\\\\\"", x)
  x <- gsub("\n", "\\\\n", x)
  x <- gsub("[[:cntrl:]]", " ", x)
  paste0("\"", x, "\"")
}
strv <- function(x) paste0("[", paste(vapply(x, str1, ""), collapse = ","), "]")
obj <- function(fields) {
  paste0("{", paste(paste0(str1(names(fields)), ":", unlist(fields)), collapse = ","), "}")
}

for (s in args[-1]) {
  spec <- parse_spec(s)
  d <- dat
  if (spec$factors != "") {
    for (col in strsplit(spec$factors, ",", fixed = TRUE)[[1]]) d[[col]] <- factor(d[[col]])
  }
  f <- as.formula(spec$formula)
  reml <- spec$reml == "1"
  ctrl <- if (spec$control == "tight") {
    lmerControl(optimizer = "nloptwrap",
                optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-13, xtol_rel = 1e-12,
                               ftol_rel = 1e-15, maxeval = 1e6))
  } else if (spec$control == "default") {
    lmerControl()
  } else {
    stop(paste("unknown control:", spec$control))
  }
  call <- if (spec$weights != "") {
    bquote(lmer(.(f), data = d, REML = .(reml), control = ctrl,
                weights = .(as.name(spec$weights))))
  } else {
    bquote(lmer(.(f), data = d, REML = .(reml), control = ctrl))
  }
  reps <- as.integer(spec$repeats)
  times <- numeric(reps)
  warns <- character(0)
  for (i in seq_len(reps)) {
    times[i] <- system.time(
      fit <- withCallingHandlers(eval(call), warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      })
    )[["elapsed"]]
  }
  vc <- VarCorr(fit)
  grp <- names(vc)[1]
  cov_re <- as.matrix(vc[[1]])
  crit <- if (reml) REMLcrit(fit) else deviance(fit)
  fields <- list(
    name = str1(spec$name),
    control = str1(spec$control),
    n = num(nobs(fit)),
    ngroups = num(ngrps(fit)[[1]]),
    reml = if (reml) "true" else "false",
    time_median = num(median(times)),
    times = num(times),
    criterion = num(crit),
    loglik = num(as.numeric(logLik(fit))),
    theta = num(getME(fit, "theta")),
    fixef_names = strv(names(fixef(fit))),
    fixef = num(fixef(fit)),
    se = num(sqrt(diag(as.matrix(vcov(fit))))),
    sigma2 = num(sigma(fit)^2),
    group = str1(grp),
    re_names = strv(colnames(cov_re)),
    cov_re = num(as.vector(cov_re)),
    singular = if (isSingular(fit)) "true" else "false",
    warnings = strv(unique(warns))
  )
  if (spec$ranef == "1") {
    re <- ranef(fit, condVar = TRUE)[[1]]
    pv <- attr(re, "postVar")
    sds <- t(apply(pv, 3, function(m) sqrt(diag(as.matrix(m)))))
    if (ncol(re) == 1) sds <- t(sds)
    fields$ranef_groups <- strv(rownames(re))
    fields$ranef <- num(as.vector(t(as.matrix(re))))
    fields$ranef_sd <- num(as.vector(t(sds)))
  }
  cat("LME4 ", obj(fields), "\n", sep = "")
}
