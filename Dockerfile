FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORTAL_VAR_DIR=/var/lib/portal
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
RUN mkdir -p /var/lib/portal && python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
