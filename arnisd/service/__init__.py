"""Running arnisd as a service: the machine's TOML config, the coordinator service and its HTTP
API, job requests, the status client, sd_notify and signal glue.

POSIX-only calls (sd_notify sockets, signals beyond SIGTERM/SIGINT) live here and nowhere else.
"""
