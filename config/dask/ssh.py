"""A Dask cluster over SSH, for `arnisd generate --dask ADDRESS`.

The first host runs the scheduler, every host (the first too) runs workers; each needs
arnisd[dask] of the same version (and asyncssh here). Leave it running and start the job with
the address it prints.
"""
import time

from distributed import SSHCluster

cluster = SSHCluster(["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
                     worker_options={"nthreads": 1, "n_workers": 4},
                     scheduler_options={"port": 8786, "dashboard_address": ":8787"})
print(cluster.scheduler_address, flush=True)
while True:
    time.sleep(3600)
