# serenade: one image for `serenade migrate`, `api`, `generator` and `deadletter`.
# compose.yaml builds it; `docker build -t serenade .` does too. No secret is baked in: every
# SERENADE_* secret comes from the environment at run time.

# --- builder: the project and its pinned dependencies, installed into a virtualenv ---------
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/serenade
ENV PATH=/opt/serenade/bin:$PATH

WORKDIR /src
# Only what the package is built from (pyproject.toml names README.md as its readme).
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# Without the `vocals` extra: the local provider's singing voice (eSpeak NG and Praat, both
# GPL-3.0) is left out of the image, so its songs are instrumental. An image that sings installs
# '.[vocals]' here instead, and is then distributed under the GPL-3.0's terms.
RUN pip install . \
    && serenade --help >/dev/null

# --- runtime: the virtualenv on a slim base, run as an unprivileged user ---------------------
FROM python:3.11.14-slim-bookworm AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/serenade/bin:$PATH \
    SERENADE_DATA_DIR=/var/lib/serenade \
    SERENADE_STORAGE_URL=file:///var/lib/serenade/storage

# A fixed numeric uid/gid, so that volume ownership and runAsUser-style checks are predictable.
# The storage folder exists in the image with that owner: a named volume mounted there starts
# out owned by it.
RUN groupadd --system --gid 10001 serenade \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/serenade --shell /usr/sbin/nologin serenade \
    && install --directory --owner=10001 --group=10001 --mode=0750 \
        /var/lib/serenade /var/lib/serenade/storage

COPY --from=builder /opt/serenade /opt/serenade

WORKDIR /var/lib/serenade
USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["serenade"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
