# sh2jira container: `sh2jira run` against the config mounted at /etc/sh2jira/config.yaml.
#
# Base image pinned by digest: the multi-arch index of python:3.11-slim (Python 3.11.16, Debian trixie, tag
# pushed 2026-08-16). It was not pulled from here (no registry access); it is the digest public Dockerfiles and
# an image-provenance record give for that tag (resolved 2026-08-18). To move to a newer base deliberately:
# `docker pull python:3.11-slim`, copy the `Digest:` it prints into both FROM lines, and rebuild.

# ---- builder: a venv with the pinned dependencies, then sh2jira ----
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS builder
# -c pins what is installed; PIP_CONSTRAINT also pins pip's isolated build environment (setuptools).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, from pyproject's list at constraints.txt's versions: this layer stays cached until one of
# these two files changes, whatever happens to the source.
COPY pyproject.toml constraints.txt ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt -r requirements.txt
COPY README.md LICENSE ./
COPY sh2jira ./sh2jira
RUN /opt/venv/bin/pip install --no-deps -c constraints.txt . \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools

# ---- final: the venv and a non-root user; no pip, no setuptools, no source tree, no build tools ----
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    SH2JIRA_CONFIG=/etc/sh2jira/config.yaml SH2JIRA_METRICS_PORT=9464 SH2JIRA_METRICS_HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=2
RUN python -m pip uninstall --yes pip setuptools wheel \
 && useradd --system --uid 10001 --home-dir /var/lib/sh2jira --create-home sh2jira \
 && mkdir -p /etc/sh2jira && chown sh2jira /var/lib/sh2jira
COPY --from=builder /opt/venv /opt/venv

# The ledger lives on a volume so it survives restarts; point ledger.path at /var/lib/sh2jira/ledger.sqlite3.
VOLUME ["/var/lib/sh2jira"]
USER sh2jira
EXPOSE 9464
# /healthz turns 503 when no cycle has succeeded for 3 intervals + 5 minutes (containers run with --once
# report unhealthy by design: use the exit code there).
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m CMD ["sh2jira", "healthcheck"]
ENTRYPOINT ["sh2jira"]
CMD ["run"]
