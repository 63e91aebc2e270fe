# The runtime image that the builtin Deployment runs: `modelops serve --config ...`.
# It matches the generated pod: UID/GID 10001, read-only root filesystem (writes go to the
# /tmp and /var/lib/modelops emptyDirs), API on 8080 and /metrics on 9090.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY compiler ./compiler
RUN python -m venv /opt/modelops \
 && /opt/modelops/bin/pip install --no-cache-dir '.[serve]'

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
