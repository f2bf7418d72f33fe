# arnisd in a container: a coordinator or a worker, by the TOML file it is given.
#
#   python -m arnisd.service.host_bundle container/wheels   # arnisd's and its dependencies' wheels
#   podman build -t arnisd .                                # or docker build; no network needed
#   podman run -v ./coordinator.toml:/etc/arnisd/arnisd.toml:ro arnisd
#
# BASE: any image with Python 3.11 or newer and its venv module (python3-venv on Debian).
ARG BASE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE}

COPY container/wheels/ /tmp/arnisd-wheels/
RUN python3 -m venv /opt/arnisd \
 && /opt/arnisd/bin/pip install --no-index --no-cache-dir --find-links /tmp/arnisd-wheels arnisd \
 && rm -rf /tmp/arnisd-wheels \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/arnisd --create-home arnisd

USER arnisd
WORKDIR /var/lib/arnisd
VOLUME /var/lib/arnisd
ENV PATH=/opt/arnisd/bin:$PATH
ENTRYPOINT ["arnisd", "run", "--config", "/etc/arnisd/arnisd.toml"]
