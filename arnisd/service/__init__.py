"""Running arnisd as a service: job requests, the status client, sd_notify and signal glue.

POSIX-only calls (sd_notify sockets, signals beyond SIGTERM/SIGINT) live here and nowhere else.
"""
