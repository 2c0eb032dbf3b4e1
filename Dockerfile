# One image for the search service, the workers and the CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lcworker ./lcworker
COPY cli ./cli
RUN pip install --no-cache-dir '.[dashboard]'
# Checkpoints live on a volume shared by every worker.
VOLUME ["/checkpoints"]
WORKDIR /checkpoints
ENTRYPOINT []
CMD ["lcq", "--help"]
