# Generated from jobstream/identities.py by `python -m stack.k8s_resources`: edit the catalog, not this file.
# Makes each service identity's MariaDB user exist with exactly the catalog's grants, as `python -m stack up` does
# on the local stack (stack/identities.py). The migrate Job runs it after the migrations, since grants name tables,
# as root (MYSQL_PWD); CREATE OR REPLACE USER drops what a user had, so every run leaves exactly the catalog's grants.
# Each password comes from the environment (MYSQL_PASSWORD_<IDENTITY>, from the jobstream-datastores Secret, equal to
# the one in that identity's mysql-url-<identity>), quoted for SQL here. A client may connect from any pod address
# ('%'): the NetworkPolicies decide which pods reach mariadb:3306.
set -eu
sql_string() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }
: "${MYSQL_PWD:?must be set}"
: "${MYSQL_PASSWORD_GATEWAY:?must be set}"
: "${MYSQL_PASSWORD_OUTBOX_RELAY:?must be set}"
: "${MYSQL_PASSWORD_SINK_MYSQL:?must be set}"
: "${MYSQL_PASSWORD_REPLAY:?must be set}"
mariadb --host=mariadb --user=root --batch <<SQL
CREATE OR REPLACE USER 'jobstream_gateway'@'%' IDENTIFIED BY '$(sql_string "$MYSQL_PASSWORD_GATEWAY")';
GRANT SELECT ON jobstream.* TO 'jobstream_gateway'@'%';
GRANT INSERT, UPDATE ON jobstream.users TO 'jobstream_gateway'@'%';
GRANT INSERT, UPDATE ON jobstream.refresh_tokens TO 'jobstream_gateway'@'%';
GRANT INSERT, UPDATE ON jobstream.invitations TO 'jobstream_gateway'@'%';
GRANT INSERT ON jobstream.outbox TO 'jobstream_gateway'@'%';
CREATE OR REPLACE USER 'jobstream_outbox_relay'@'%' IDENTIFIED BY '$(sql_string "$MYSQL_PASSWORD_OUTBOX_RELAY")';
GRANT SELECT, UPDATE ON jobstream.outbox TO 'jobstream_outbox_relay'@'%';
CREATE OR REPLACE USER 'jobstream_sink_mysql'@'%' IDENTIFIED BY '$(sql_string "$MYSQL_PASSWORD_SINK_MYSQL")';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.jobs TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.job_tags TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.applications TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.application_stage_history TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.job_funnel TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.notification_log TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.job_window_stats TO 'jobstream_sink_mysql'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON jobstream.company_window_stats TO 'jobstream_sink_mysql'@'%';
CREATE OR REPLACE USER 'jobstream_replay'@'%' IDENTIFIED BY '$(sql_string "$MYSQL_PASSWORD_REPLAY")';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON jobstream.* TO 'jobstream_replay'@'%';
SQL
