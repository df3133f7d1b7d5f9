# Level 2 web, worker and beat image. docker-compose.yml runs each with its own command.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DEBUG=false

WORKDIR /app
RUN useradd --create-home --uid 1000 level2

COPY pyproject.toml constraints.txt README.md ./
COPY level2 level2
COPY ops ops
COPY inversions inversions
RUN pip install -c constraints.txt .

COPY manage.py ./
COPY templates templates
COPY static static
# collectstatic needs settings only; placeholders keep it from starting embedded services.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=postgres://unused/unused REDIS_URL=redis://unused:6379/0 \
    python manage.py collectstatic --no-input

# var/ holds the local collections and the demo store's received inversions.
RUN mkdir -p var/collections && chown -R level2 var
USER level2
EXPOSE 8000
CMD ["gunicorn", "level2.wsgi", "--config", "python:level2.gunicorn", "--bind", "0.0.0.0:8000"]
