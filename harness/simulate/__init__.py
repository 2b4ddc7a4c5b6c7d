"""Monte Carlo studies across engines (``mlm-harness simulate STUDY.yaml``), run on Dask.

A study (:mod:`.study`) names a data-generating model with true parameter values, a design
grid, the engines and estimators to fit, and a seed. Each replication of each design cell draws
one data set from its own random stream (:mod:`.generate`; the stream depends only on the study
seed, the cell and the replication number), fits every engine on it with the harness's
``fit_one`` and records estimates, standard errors and intervals (:mod:`.replicate`). Batches of
replications are Dask tasks (:mod:`.cluster`, :mod:`.engine`); each finished batch is written to
disk at once (:mod:`.store`), so an interrupted study resumes where it stopped. The tidy summary
(:mod:`.summarize`: bias, RMSE, coverage, rejection, convergence, engine disagreement, each with
its Monte Carlo standard error), the verdicts (:mod:`.verdicts`) and the HTML report
(:mod:`.report`) are computed from the stored replications only.

Nothing here is imported by ``mlm-harness --help``: Dask and pyarrow load when a study runs.
"""
