"""A Dask cluster from a SLURM (or PBS) batch queue, for `arnisd generate --dask ADDRESS`.

Run it on the login node in the environment where arnisd[dask] and dask-jobqueue are
installed (the scheduler runs here; the workers are batch jobs of the same environment), leave
it running, and start the job from the same machine with the address it prints. Edit the
queue, account and sizes for your site. PBS: use PBSCluster instead of SLURMCluster.
"""
import time

from dask_jobqueue import SLURMCluster   # or: from dask_jobqueue import PBSCluster

cluster = SLURMCluster(queue="normal", account="myproject", cores=8, processes=8,
                       memory="16GB", walltime="02:00:00")
cluster.scale(jobs=4)                    # 4 batch jobs of 8 single-threaded workers each
print(cluster.scheduler_address, flush=True)
while True:
    time.sleep(3600)
