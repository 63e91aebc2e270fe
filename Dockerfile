# The runtime image that the builtin Deployment runs: `modelops serve --config ...`.
# It matches the generated pod: UID/GID 10001, read-only root filesystem (writes go to the
# /tmp and /var/lib/modelops emptyDirs), API on 8080 and /metrics on 9090.
# It holds the server alone: the packages of the `runtime` extra at the versions and hashes of
# requirements/runtime.lock, then modelops with --no-deps, so none of the compiler's own
# dependencies (Jinja2, GitPython, the Grafana SDK, the kubernetes client) are installed.
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements/runtime.lock requirements/
RUN python -m venv /opt/modelops \
 && /opt/modelops/bin/pip install --no-cache-dir --require-hashes --only-binary :all: -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY compiler ./compiler
# The locked setuptools builds modelops, then goes: the server never needs it.
RUN /opt/modelops/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
 && /opt/modelops/bin/pip uninstall --yes setuptools

FROM python:3.11-slim
ENV PATH=/opt/modelops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/modelops /opt/modelops
RUN groupadd --gid 10001 modelops \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin modelops \
 && mkdir -p /var/lib/modelops /etc/modelops \
 && chown 10001:10001 /var/lib/modelops
WORKDIR /var/lib/modelops
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["modelops"]
CMD ["serve", "--config", "/etc/modelops/runtime.json", "--host", "0.0.0.0"]
