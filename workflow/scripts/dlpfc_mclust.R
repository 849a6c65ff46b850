# R's mclust, model "EEE" (tied full covariance), on the features our methods cluster
# (rule dlpfc_mclust; see sinkhorn_em_repro.experiments.dlpfc.mclust).
#
#   mclust     em(modelName = "EEE") from our start of each seed (weights, means, tied covariance)
#   mclust_hc  Mclust(X, G = K, modelNames = "EEE"): mclust's own hierarchical start, once
#              (tree on every spot when hc_subset is null, as our hc start; else a random subset)
#
# Reads CSV tables written by dlpfc_mclust_inputs.py; writes one row per fit (fits), the
# classification of every fit (labels, one column per fit) and the fitted parameters
# (params: weights and means per component; sigmas: rows of the tied covariance).
log <- file(snakemake@log[[1]], open = "wt")
sink(log)
sink(log, type = "message")

suppressPackageStartupMessages(library(mclust))
cat("mclust", as.character(packageVersion("mclust")), "on", R.version.string, "\n")

cfg <- snakemake@params[["cfg"]]
X <- as.matrix(read.csv(snakemake@input[["data"]]))
starts <- read.csv(snakemake@input[["starts"]], colClasses = c(seed = "character"))
sigmas <- read.csv(snakemake@input[["sigmas"]])
n <- nrow(X)
d <- ncol(X)
K <- max(starts$component)
control <- emControl(tol = c(as.numeric(cfg[["tol"]]), sqrt(.Machine$double.eps)), itmax = as.integer(cfg[["max_iter"]]))

fits <- list()
labels <- list()
params <- list()
sigma_rows <- list()

record <- function(method, weights, seed_index, fit, seconds) {
  key <- paste0(method, "_", seed_index)
  ok <- !is.null(fit) && is.finite(fit$loglik)
  # em() reports its iterations, negated when it stopped at itmax. Mclust() (hierarchical start,
  # then EM) reports none: it counts as converged when one more E-step changes the log-likelihood
  # by less than tol, mclust's own criterion.
  iterations <- NA_integer_
  converged <- FALSE
  if (ok && method == "mclust") {
    iterations <- as.integer(attr(fit, "info")[["iterations"]])
    converged <- iterations > 0
  } else if (ok) {
    again <- estep(data = X, modelName = "EEE", parameters = fit$parameters)$loglik
    converged <- is.finite(again) && abs(again - fit$loglik) / (1 + abs(again)) < as.numeric(cfg[["tol"]])
  }
  fits[[key]] <<- data.frame(
    method = method, weights = weights, seed_index = seed_index,
    loglik = if (ok) fit$loglik else NA_real_,
    n_iter = if (is.na(iterations)) -1L else abs(iterations),
    converged = converged,
    fit_seconds = seconds
  )
  if (!ok) {
    return(invisible(NULL))
  }
  labels[[key]] <<- max.col(fit$z, ties.method = "first")
  p <- fit$parameters
  params[[key]] <<- data.frame(
    method = method, seed_index = seed_index, component = seq_len(K),
    weight = p$pro, setNames(as.data.frame(t(p$mean)), paste0("m", seq_len(d)))
  )
  sigma_rows[[key]] <<- data.frame(
    method = method, seed_index = seed_index, row = seq_len(d),
    setNames(as.data.frame(p$variance$Sigma), paste0("s", seq_len(d)))
  )
}

for (seed_index in sort(unique(starts$seed_index))) {
  start <- starts[starts$seed_index == seed_index, ]
  start <- start[order(start$component), ]
  Sigma <- as.matrix(sigmas[sigmas$seed_index == seed_index, paste0("s", seq_len(d))])
  Sigma <- (Sigma + t(Sigma)) / 2
  dimnames(Sigma) <- NULL
  parameters <- list(
    pro = start$weight,
    mean = t(as.matrix(start[, paste0("m", seq_len(d))])),
    variance = list(modelName = "EEE", d = d, G = K, Sigma = Sigma, cholSigma = chol(Sigma))
  )
  began <- proc.time()[["elapsed"]]
  fit <- tryCatch(
    em(data = X, modelName = "EEE", parameters = parameters, control = control, warn = FALSE),
    error = function(e) {
      cat("seed", seed_index, "failed:", conditionMessage(e), "\n")
      NULL
    }
  )
  record("mclust", cfg[["weights"]], seed_index, fit, proc.time()[["elapsed"]] - began)
}

if (isTRUE(cfg[["hierarchical_start"]])) {
  began <- proc.time()[["elapsed"]]
  # The tree on every spot (hc_subset null) as our hc start, else mclust's random subset of that size.
  hc_subset <- cfg[["hc_subset"]]
  set.seed(as.integer(cfg[["seed"]]))
  subset <- if (is.null(hc_subset) || hc_subset >= n) seq_len(n) else sort(sample(seq_len(n), size = hc_subset))
  mclust.options(hcModelName = cfg[["hc_model"]])
  fit <- Mclust(
    X, G = K, modelNames = "EEE", control = control, verbose = FALSE,
    initialization = list(subset = subset)
  )
  record("mclust_hc", "none", 0L, fit, proc.time()[["elapsed"]] - began)
}

write.csv(do.call(rbind, fits), snakemake@output[["fits"]], row.names = FALSE)
write.csv(as.data.frame(labels), snakemake@output[["labels"]], row.names = FALSE)
write.csv(do.call(rbind, params), snakemake@output[["params"]], row.names = FALSE)
write.csv(do.call(rbind, sigma_rows), snakemake@output[["sigmas"]], row.names = FALSE)
cat("fitted", length(fits), "models on", n, "spots x", d, "features, K =", K, "\n")
