FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORTAL_VAR_DIR=/var/lib/portal \
    DJANGO_SETTINGS_MODULE=portal.production
WORKDIR /app
COPY pyproject.toml ./
COPY portal ./portal
COPY provisioning ./provisioning
COPY zones ./zones
COPY certificates ./certificates
COPY notifications ./notifications
COPY outbox ./outbox
RUN pip install .
COPY . .
# The static files are collected into the image by the production storage (hashed names,
# compressed copies; WhiteNoise serves them). The production settings refuse to load
# without their secrets: placeholders suffice for collecting files.
RUN mkdir -p /var/lib/portal && SECRET_KEY=collectstatic ORDER_API_TOKEN=collectstatic \
    FIELD_ENCRYPTION_KEY=collectstatic python manage.py collectstatic --noinput -v0
RUN useradd --system --home-dir /var/lib/portal portal && chown portal /var/lib/portal
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
