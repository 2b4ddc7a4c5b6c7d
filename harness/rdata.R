# R side of harness/rdata.py: data that only R can read or that R packages ship.
#
#   Rscript harness/rdata.R export <package> <dataset> <out.csv>
#       writes data(<dataset>, package = <package>) as CSV (row names dropped, NA as NA): the
#       gallery's datasets (data/gallery.yaml), checked against their SHA-256 afterwards;
#   Rscript harness/rdata.R export published <name> <out.csv>
#       writes one of the small data sets printed inside other projects' test suites (below),
#       for the gallery specs that check the published values;
#   Rscript harness/rdata.R rds <file.rds> <out.csv> <levels.csv>
#       writes the data frame saved in an .rds file as CSV, and the level order of each of its
#       factor columns (one row per level: column, level) so Python keeps R's order.
#
# Every argument arrives through commandArgs(): nothing a user wrote is evaluated as R code.

args <- commandArgs(trailingOnly = TRUE)
fail <- function(...) {
  message(...)
  quit(save = "no", status = 2)
}
if (length(args) < 1) fail("usage: rdata.R export <package> <dataset> <out.csv> | rds <file> <out.csv> <levels.csv>")

write_frame <- function(x, out) {
  # write.csv's numbers have 15 significant digits (R's own default), factors become their labels
  utils::write.csv(x, out, row.names = FALSE, na = "NA", fileEncoding = "UTF-8")
}

as_frame <- function(x, what) {
  if (!is.data.frame(x)) fail(what, " is not a data frame (it is ", class(x)[1], ")")
  as.data.frame(x, stringsAsFactors = FALSE)
}

# Data printed in other projects' test suites, with where they are printed.
published <- list(
  # MixedModels.jl test/pls.jl, testset "wts" (lines 924-962 at commit 2228a9a1), the example of
  # https://github.com/JuliaStats/MixedModels.jl/issues/194; its values come from lme4.
  mixedmodels_wts = function() data.frame(
    a = c(1.55945122, 0.004391538, 0.005554163, -0.173029772, 4.586284429, 0.259493671,
          -0.091735715, 5.546487603, 0.457734831, -0.030169602),
    b = c(0.24520519, 0.080624178, 0.228083467, 0.2471453, 0.398994279, 0.037213859,
          0.102144973, 0.241380251, 0.206570975, 0.15980803),
    c = c("H", "F", "K", "P", "P", "P", "D", "M", "I", "D"),
    w1 = c(20, 40, 35, 12, 29, 25, 65, 105, 30, 75),
    w2 = c(0.04587156, 0.091743119, 0.080275229, 0.027522936, 0.066513761, 0.05733945,
           0.149082569, 0.240825688, 0.068807339, 0.172018349),
    stringsAsFactors = FALSE)
)

if (args[1] == "export") {
  if (length(args) != 4) fail("usage: rdata.R export <package> <dataset> <out.csv>")
  package <- args[2]
  name <- args[3]
  if (package == "published") {
    if (!(name %in% names(published))) fail("no published data set ", name)
    write_frame(published[[name]](), args[4])
    quit(save = "no", status = 0)
  }
  if (!requireNamespace(package, quietly = TRUE)) {
    fail("the R package ", package, " is not installed (install.packages(\"", package, "\"))")
  }
  env <- new.env()
  found <- utils::data(list = name, package = package, envir = env)
  if (!(name %in% ls(env))) fail("the R package ", package, " has no dataset ", name)
  x <- as_frame(get(name, envir = env), paste0(package, "::", name))
  write_frame(x, args[4])
} else if (args[1] == "rds") {
  if (length(args) != 4) fail("usage: rdata.R rds <file.rds> <out.csv> <levels.csv>")
  x <- as_frame(readRDS(args[2]), args[2])
  factors <- names(x)[vapply(x, is.factor, logical(1))]
  levels <- data.frame(column = character(), level = character(), stringsAsFactors = FALSE)
  for (f in factors) {
    levels <- rbind(levels, data.frame(column = f, level = levels(x[[f]]),
                                       stringsAsFactors = FALSE))
  }
  write_frame(x, args[3])
  utils::write.csv(levels, args[4], row.names = FALSE, fileEncoding = "UTF-8")
} else {
  fail("unknown command ", args[1], " (export or rds)")
}
