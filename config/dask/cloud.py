"""Dask on cloud VMs with dask-cloudprovider, for `arnisd generate --dask ADDRESS`.

Every VM runs a container image with arnisd[dask] installed (build one from a python base:
`pip install 'arnisd[dask]'`), the scheduler's included. Open the scheduler's port (8786) to
the machine that runs `arnisd generate`. Azure: AzureVMCluster; Google Cloud: GCPCluster.
"""
import time

from dask_cloudprovider.aws import EC2Cluster

cluster = EC2Cluster(docker_image="ghcr.io/example/arnisd-dask:latest",
                     instance_type="c6i.2xlarge", n_workers=4,
                     worker_options={"nthreads": 1}, security=True)
print(cluster.scheduler_address, flush=True)
while True:
    time.sleep(3600)
