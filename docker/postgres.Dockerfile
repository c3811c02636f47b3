# PostgreSQL from Debian's package, for the views of the consumer groups. The first start makes
# the cluster in the volume with POSTGRES_USER as its superuser, password POSTGRES_PASSWORD, and
# the database POSTGRES_DB; later starts use what the volume holds.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15 \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres /var/run/postgresql
COPY docker/postgres/run.sh /usr/local/bin/agentflux-postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    POSTGRES_USER=agentflux \
    POSTGRES_DB=agentflux
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
HEALTHCHECK --interval=3s --timeout=5s --start-period=30s --retries=5 \
  CMD ["sh", "-c", "pg_isready -q -h 127.0.0.1 -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\""]
STOPSIGNAL SIGINT
ENTRYPOINT ["agentflux-postgres"]
