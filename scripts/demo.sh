#!/usr/bin/env bash
# The main job, end to end on the embedded default: installs what is missing,
# builds, runs a commune health station's day with station-cli — offline, on one
# SQLite file — then starts a central server on loopback (HTTPS, self-signed
# certificate), enrolls that station and a second one, lets both sync, and
# prints what the centre holds: the union of both stations' records.
#   scripts/demo.sh [WORK_DIR]     (default: a new temporary folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" "$root/build" RelWithDebInfo

work=${1:-$(mktemp -d /tmp/tramsync-demo.XXXXXX)}
mkdir -p "$work"
export TRAMSYNC_DB="$work/station.db"
rm -f "$TRAMSYNC_DB" "$TRAMSYNC_DB-wal" "$TRAMSYNC_DB-shm"
cli() { "$root/build/station-cli/station-cli" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Station time is Vietnam time (UTC+7): the morning's home visits are entered
# in the evening with --at, as staff do.
today=$(TZ=Asia/Ho_Chi_Minh date +%F)
yesterday=$(TZ=Asia/Ho_Chi_Minh date -d yesterday +%F)
soon=$(TZ=Asia/Ho_Chi_Minh date -d '+20 days' +%F)
later=$(TZ=Asia/Ho_Chi_Minh date -d '+400 days' +%F)

say "A new station file, no network needed"
cli init --station TYT-SINHO --name "Trạm Y tế xã Sìn Hồ" --device laptop-1 --district "Sìn Hồ" --province "Lai Châu"

say "Households and patients under home care"
hh=$(cli household add --village "Bản Mới" --head "Nguyễn Văn An")
an=$(cli patient add --name "Nguyễn Văn An" --sex male --birth 1948-03-02 --village "Bản Mới" --household "$hh" \
     --category elderly --category chronic --condition "tăng huyết áp")
lan=$(cli patient add --name "Hoàng Thị Lan" --sex female --birth 1952 --village "Bản Mới" --household "$hh" \
      --category elderly)
hoa=$(cli patient add --name "Đặng Thị Hoa" --sex female --birth 1990-05-02 --village "Nậm Tăm" --category covid-home \
      --phone 0912345678)
dinh=$(cli patient add --name "Vừ A Dính" --sex male --birth 1961 --village "Pa Khóa" --category chronic \
       --condition "đái tháo đường")
pang=$(cli patient add --name "Lò Văn Pâng" --sex male --birth 2015 --village "Nậm Tăm" --category vulnerable)
cat > "$work/danh-sach.csv" <<'CSV'
name,sex,birth,village,category,condition,phone
"Giàng Thị Mỷ",female,1939,Pa Khóa,elderly;chronic,"hen phế quản, COPD",
Sùng A Páo,male,1944-07-15,Bản Mới,elderly,,0987000111
CSV
cli patient import "$work/danh-sach.csv"
cli patient list

say "Staff type without diacritics: \"nguyen van an\" and \"DANG\" still find them"
cli patient list --search "nguyen van an"
cli patient list --search DANG

say "Medicine arrives from the district, with lots and expiry dates"
cli item add --code AMLO5 --name "Amlodipin 5mg" --unit viên --reserve 300 >/dev/null
cli item add --code PARA500 --name "Paracetamol 500mg" --unit viên --reserve 100 >/dev/null
cli item add --code O2-40L --name "Ô xy y tế bình 40L" --unit bình --kind oxygen --reserve 2 >/dev/null
cli stock receive --item AMLO5 --qty 200 --lot A2310 --expiry "$soon" --source "TTYT huyện Sìn Hồ" --at "${yesterday}T08:00" >/dev/null
cli stock receive --item AMLO5 --qty 200 --lot A2405 --expiry "$later" --source "TTYT huyện Sìn Hồ" --at "${yesterday}T08:00" >/dev/null
cli stock receive --item PARA500 --qty 500 --lot P11 --expiry "$later" --source "Hội Chữ thập đỏ" --at "${yesterday}T08:05" >/dev/null
cli stock receive --item O2-40L --qty 3 --lot OX1 --expiry "$later" --at "${yesterday}T08:10" >/dev/null

say "The mobile team's home visits this morning, entered on return"
cli visit add "$an" --temp 36.8 --spo2 97 --bp 150/95 --pulse 78 --note "huyết áp cao" --at "${today}T00:05" >/dev/null
cli visit add "$hoa" --temp 38.2 --spo2 95 --pulse 96 --symptom sốt --symptom ho --at "${today}T00:20" >/dev/null
cli visit add "$dinh" --bp 135/85 --at "${today}T00:30" --refer --note "chuyển tuyến huyện khám đường huyết" >/dev/null

say "Two months of chronic medicine at home (first expiry first out)"
cli dispense "$an" --item AMLO5 --qty 150 --days 60 --at "${today}T00:06"
wrong=$(cli dispense "$hoa" --item PARA500 --qty 30 --days 5 --at "${today}T00:21")
cli void "$wrong" --reason "nhập nhầm số lượng" >/dev/null
cli dispense "$hoa" --item PARA500 --qty 10 --days 3 --at "${today}T00:22" >/dev/null
cli stock writeoff --item O2-40L --lot OX1 --qty 1 --reason damaged --at "${today}T00:40" >/dev/null

say "A refusal: more than is on hand"
cli dispense "$dinh" --item AMLO5 --qty 1000 || true

say "Medical waste from the covid-home patient: chain of custody"
b1=$(cli waste add --kind infectious --bags 2 --weight-kg 1.4 --patient "$hoa" --at "${yesterday}T09:00")
cli waste move "$b1" --stage collected --at "${yesterday}T10:00" >/dev/null
cli waste move "$b1" --stage stored --at "${yesterday}T11:00" >/dev/null
cli waste move "$b1" --stage handed-over --to "Bệnh viện Đa khoa huyện Sìn Hồ" --at "${today}T00:45" >/dev/null
b2=$(cli waste add --kind sharps --bags 1 --weight-kg 0.3 --patient "$hoa" --at "${today}T00:21")
cli waste list --pending

say "Patient record"
cli patient show "$an"

say "Stock"
cli stock

say "Daily report"
cli report daily

say "Status: every write is a change waiting to sync"
cli status
echo
echo "Station file: $TRAMSYNC_DB (integrity: $(sqlite3 "$TRAMSYNC_DB" 'PRAGMA integrity_check'))"

# --- the link returns: the district centre, a second station, sync ---------------
central="$work/central.db"
rm -f "$central" "$central-wal" "$central-shm"
srv() { "$root/build/server/tramsync-server" --db "$central" "$@"; }
field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" | head -1; }

say "The district centre registers both stations (one-time enrollment codes)"
code_a=$(srv station add --code TYT-SINHO --name "Trạm Y tế xã Sìn Hồ" --district "Sìn Hồ" --province "Lai Châu" \
         --json | field enrollment_code)
code_b=$(srv station add --code TYT-PHANGSOLIN --name "Trạm Y tế xã Phăng Sô Lin" --district "Sìn Hồ" \
         --province "Lai Châu" --json | field enrollment_code)
srv item add --code ORS --name "Oresol 245" --unit gói >/dev/null
srv station list

say "The centre's server on loopback: HTTPS with a self-signed certificate"
"$root/build/server/tramsync-server" --db "$central" serve --listen 127.0.0.1:0 --self-signed "$work/tls" \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/server.out"
url=$(sed -n 's/^listening on //p' "$work/server.out")
pin=$(sed -n 's/^fingerprint SHA256 //p' "$work/server.out")
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

say "Station Sìn Hồ, offline until now, enrolls (pinning the certificate) and syncs"
cli enroll --server "$url" --code "$code_a" --pin "$pin"
cli sync

say "Sìn Hồ serves its mobile team on the station's Wi-Fi (here: loopback), one village for the team"
# The program itself, not the cli function: $! must be its pid, so SIGTERM reaches it.
"$root/build/station-cli/station-cli" serve --listen 127.0.0.1:0 --self-signed "$work/hub-tls" \
  >"$work/hub.out" 2>"$work/hub.log" &
hub_pid=$!
trap 'kill -TERM $server_pid $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'serving' "$work/hub.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/hub.out"
hub_url=$(sed -n 's/.* on \(https:.*\)$/\1/p' "$work/hub.out")
hub_pin=$(sed -n 's/^fingerprint SHA256 //p' "$work/hub.out")
[ -n "$hub_url" ] || { echo "the hub did not start:" >&2; cat "$work/hub.log" >&2; exit 1; }
team_code=$(cli device add --name "tổ lưu động 1" --villages "Bản Mới" --json | field enrollment_code)
tab="$work/tablet.db"
rm -f "$tab" "$tab-wal" "$tab-shm"
cli_t() { "$root/build/station-cli/station-cli" --db "$tab" "$@"; }
cli_t enroll --server "$hub_url" --code "$team_code" --pin "$hub_pin" --name "tablet 1"
cli_t sync
cli_t patient list   # Bản Mới only
say "The team's house visit, offline; back at the station the tablet syncs, and the station relays it upward"
tv=$(cli_t patient add --name "Lò Thị Xuân" --sex female --birth 1939 --village "Bản Mới" --category elderly)
cli_t visit add "$tv" --temp 37.0 --spo2 96 --bp 145/90 >/dev/null
cli_t sync
cli sync
cli device list
kill -TERM "$hub_pid"
wait "$hub_pid" || true

say "Station Phăng Sô Lin enrolls a new laptop, works offline, syncs"
b="$work/phangsolin.db"
rm -f "$b" "$b-wal" "$b-shm"
cli_b() { "$root/build/station-cli/station-cli" --db "$b" "$@"; }
cli_b enroll --server "$url" --code "$code_b" --pin "$pin" --name laptop
pa=$(cli_b patient add --name "Vàng Thị Sua" --sex female --birth 1947 --village "Phăng Sô Lin" --category elderly)
cli_b patient add --name "Lý A Sử" --sex male --birth 1958 --village "Nậm Cuổi" --category chronic \
  --condition "tăng huyết áp" >/dev/null
cli_b visit add "$pa" --temp 36.9 --bp 140/90 >/dev/null
cli_b waste add --kind sharps --bags 1 --weight-kg 0.2 --patient "$pa" >/dev/null
cli_b sync
cli sync   # Sìn Hồ again: nothing of Phăng Sô Lin's comes down, the catalogue does
cli status

say "What the centre holds: both stations' records, each once"
sqlite3 -header -column "$central" "
  SELECT s.code AS station,
         (SELECT count(*) FROM patients p WHERE p.station_id = s.id) AS patients,
         (SELECT count(*) FROM visits v WHERE v.station_id = s.id) AS visits,
         (SELECT count(*) FROM stock_movements m WHERE m.station_id = s.id) AS stock_movements,
         (SELECT count(*) FROM waste_batches w WHERE w.station_id = s.id) AS waste_batches,
         (SELECT count(*) FROM changes c WHERE c.station_id = s.id) AS changes
  FROM stations s ORDER BY s.code;"
echo "The tablet's changes at the centre (relayed by the station, origin kept): $(sqlite3 "$central" \
  "SELECT count(*) FROM changes WHERE origin = '$(sqlite3 "$tab" "SELECT value FROM meta WHERE key = 'device_id'")'")"
echo "Duplicated changes at the centre: $(sqlite3 "$central" \
  "SELECT count(*) - count(DISTINCT origin || '/' || origin_seq) FROM changes")"
echo "Patients of Phăng Sô Lin at Sìn Hồ: $(sqlite3 "$TRAMSYNC_DB" \
  "SELECT count(*) FROM patients p JOIN stations s ON s.id = p.station_id WHERE s.code = 'TYT-PHANGSOLIN'")"
srv device list

say "The district officer's view: every station's freshness, who lacks follow-up, stock against reserves"
srv report stations
srv report followup
srv report stock --csv --output "$work/stock.csv"
echo "Stock as CSV for a spreadsheet: $work/stock.csv ($(wc -l < "$work/stock.csv") lines)"
srv conflicts list
srv quarantine list
srv duplicates list
kill -TERM "$server_pid"
wait "$server_pid" || true
trap - EXIT
echo
echo "Server log (one JSON line per request): $work/server.log"
tail -n 3 "$work/server.log"
echo "Central file: $central (integrity: $(sqlite3 "$central" 'PRAGMA integrity_check'))"
