#!/bin/sh
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
# Creates HAPI's database and ours, both owned by $POSTGRES_USER (docker-compose.yml: ehr).
# Our tables live in schema ehr_app of database ehr (created by the migrations), never in hapi.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
SELECT format('CREATE DATABASE %I OWNER %I', 'hapi', '$POSTGRES_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'hapi') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', 'ehr', '$POSTGRES_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ehr') \gexec
SQL
