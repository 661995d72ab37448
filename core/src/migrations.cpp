#include "migrations.h"

#include <string>

#include "tramsync/core/text.h"

namespace tramsync::migrations {

namespace {

// 1: the records, the change log and the file's identity.
void v1_records(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

-- Entities. `_v` holds the version of each field as JSON {"field": [hlc, "origin"]};
-- `extra` holds fields this version does not know, kept and passed on.
CREATE TABLE stations (
  id TEXT PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL,
  district TEXT NOT NULL DEFAULT '', province TEXT NOT NULL DEFAULT '',
  _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE TABLE staff (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL DEFAULT '',
  active INTEGER NOT NULL DEFAULT 1,
  _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE TABLE households (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, village TEXT NOT NULL, head_name TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '', phone TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
  _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE TABLE patients (
  rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, station_id TEXT NOT NULL,
  household_id TEXT REFERENCES households(id),
  name TEXT NOT NULL, sex TEXT NOT NULL, birth TEXT NOT NULL, village TEXT NOT NULL,
  phone TEXT NOT NULL DEFAULT '', national_id TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT 'active', status_changed_at TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
  _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX patients_station ON patients(station_id, status);
CREATE INDEX patients_household ON patients(household_id);
-- Set-valued fields (categories, conditions) as last-writer-wins element sets:
-- each member has its own presence flag and version.
CREATE TABLE patient_sets (
  patient_id TEXT NOT NULL REFERENCES patients(id), field TEXT NOT NULL, value TEXT NOT NULL,
  present INTEGER NOT NULL, hlc INTEGER NOT NULL, origin TEXT NOT NULL,
  PRIMARY KEY (patient_id, field, value)) STRICT, WITHOUT ROWID;
CREATE INDEX patient_sets_value ON patient_sets(field, value, present);
CREATE TABLE items (
  id TEXT PRIMARY KEY, station_id TEXT, code TEXT NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL,
  kind TEXT NOT NULL, _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX items_code ON items(code);
CREATE TABLE item_reserves (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, item_id TEXT NOT NULL REFERENCES items(id),
  level INTEGER NOT NULL, _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE UNIQUE INDEX item_reserves_item ON item_reserves(station_id, item_id);
CREATE TABLE waste_batches (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, kind TEXT NOT NULL, bags INTEGER NOT NULL,
  weight_kg REAL NOT NULL, patient_id TEXT REFERENCES patients(id), household_id TEXT REFERENCES households(id),
  note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
  _v TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX waste_batches_patient ON waste_batches(patient_id);

-- Events: inserted once, never updated. `hlc` and `origin` say who recorded them when.
CREATE TABLE visits (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, patient_id TEXT NOT NULL REFERENCES patients(id),
  at TEXT NOT NULL, temp_c REAL, spo2 INTEGER, bp_sys INTEGER, bp_dia INTEGER, pulse INTEGER,
  symptoms TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '', refer INTEGER NOT NULL DEFAULT 0,
  origin TEXT NOT NULL, hlc INTEGER NOT NULL, extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX visits_patient ON visits(patient_id, at);
CREATE INDEX visits_at ON visits(station_id, at);
CREATE TABLE stock_movements (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, item_id TEXT NOT NULL REFERENCES items(id),
  kind TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT NOT NULL DEFAULT '', quantity INTEGER NOT NULL,
  patient_id TEXT REFERENCES patients(id), days_supply INTEGER, reason TEXT NOT NULL DEFAULT '',
  counterpart TEXT NOT NULL DEFAULT '', at TEXT NOT NULL,
  origin TEXT NOT NULL, hlc INTEGER NOT NULL, extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX stock_movements_lot ON stock_movements(station_id, item_id, lot);
CREATE INDEX stock_movements_patient ON stock_movements(patient_id, item_id, at);
CREATE INDEX stock_movements_at ON stock_movements(station_id, at);
CREATE TABLE waste_stages (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, batch_id TEXT NOT NULL REFERENCES waste_batches(id),
  stage TEXT NOT NULL, rank INTEGER NOT NULL, at TEXT NOT NULL, to_org TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '', origin TEXT NOT NULL, hlc INTEGER NOT NULL,
  extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX waste_stages_batch ON waste_stages(batch_id, rank);
-- A void cancels one earlier event (visit, stock movement or waste stage).
CREATE TABLE voids (
  id TEXT PRIMARY KEY, station_id TEXT NOT NULL, event_id TEXT NOT NULL, event_kind TEXT NOT NULL,
  reason TEXT NOT NULL, at TEXT NOT NULL, origin TEXT NOT NULL, hlc INTEGER NOT NULL,
  extra TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE INDEX voids_event ON voids(event_id);

-- The change log (DESIGN "The change log"): one row per record written, local or received.
CREATE TABLE changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, origin_seq INTEGER NOT NULL,
  hlc INTEGER NOT NULL, station_id TEXT NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL,
  payload TEXT NOT NULL, from_peer TEXT,
  UNIQUE (origin, origin_seq));
CREATE INDEX changes_record ON changes(kind, record_id);
)sql");
}

// 2: diacritics-insensitive search over names and villages. Folded copies of
// the text (see fold_for_search) in an FTS5 index keyed by the patient's rowid;
// the folding is ICU's, so existing rows are indexed here in C++.
void v2_search(db::WriteTxn& txn) {
  db::Db& db = txn.db();
  db.exec(R"sql(
ALTER TABLE patients ADD COLUMN village_fold TEXT NOT NULL DEFAULT '';
CREATE INDEX patients_village_fold ON patients(station_id, village_fold);
CREATE VIRTUAL TABLE patient_search USING fts5(name, village, tokenize = 'unicode61 remove_diacritics 0');
)sql");
  auto select = db.prepare("SELECT rowid, name, village FROM patients");
  while (select.step()) {
    std::string name = fold_for_search(select.str(1)), village = fold_for_search(select.str(2));
    db.prepare("UPDATE patients SET village_fold = ?1 WHERE rowid = ?2").bind(1, village).bind(2, select.i64(0)).run();
    db.prepare("INSERT INTO patient_search(rowid, name, village) VALUES (?1, ?2, ?3)")
        .bind(1, select.i64(0))
        .bind(2, name)
        .bind(3, village)
        .run();
  }
}

// 3: sync peers: per upstream peer, the cursors and the last successful sync.
void v3_peers(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
CREATE TABLE peers (
  id TEXT PRIMARY KEY, url TEXT NOT NULL DEFAULT '',
  push_cursor INTEGER NOT NULL DEFAULT 0,  -- every local log position <= this is durable at the peer
  pull_cursor INTEGER NOT NULL DEFAULT 0,  -- every peer log position <= this is stored here
  last_sync_at TEXT NOT NULL DEFAULT '',
  extra TEXT NOT NULL DEFAULT '{}') STRICT;
)sql");
}

// 4: what merging with peers needs: concurrent edits kept for review, changes
// held back with their reason, and the node registry of a server.
void v4_sync(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
CREATE TABLE conflicts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, record_id TEXT NOT NULL, station_id TEXT NOT NULL,
  field TEXT NOT NULL, winner_value TEXT NOT NULL, winner_hlc INTEGER NOT NULL, winner_origin TEXT NOT NULL,
  loser_value TEXT NOT NULL, loser_hlc INTEGER NOT NULL, loser_origin TEXT NOT NULL,
  detected_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', resolution TEXT NOT NULL DEFAULT '') STRICT;
CREATE INDEX conflicts_record ON conflicts(kind, record_id);
CREATE INDEX conflicts_status ON conflicts(status, station_id);
CREATE TABLE quarantine (
  id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, from_peer TEXT NOT NULL,
  origin TEXT NOT NULL, origin_seq INTEGER NOT NULL, hlc INTEGER NOT NULL, station_id TEXT NOT NULL,
  kind TEXT NOT NULL, record_id TEXT NOT NULL, payload TEXT NOT NULL, reason TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'held', decided_at TEXT NOT NULL DEFAULT '', decision TEXT NOT NULL DEFAULT '',
  UNIQUE (origin, origin_seq)) STRICT;
CREATE INDEX quarantine_station ON quarantine(station_id, status);
CREATE INDEX changes_station ON changes(station_id, seq);
-- A server's devices and one-time enrollment codes. Tokens and codes are stored hashed.
CREATE TABLE devices (
  id TEXT PRIMARY KEY, station_id TEXT, name TEXT NOT NULL DEFAULT '', role TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, database_id TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
  revoked_at TEXT NOT NULL DEFAULT '', last_seen_at TEXT NOT NULL DEFAULT '', last_sync_at TEXT NOT NULL DEFAULT '',
  clock_skew_ms INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE TABLE enrollment_codes (
  code_hash TEXT PRIMARY KEY, station_id TEXT, role TEXT NOT NULL, device_name TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL, expires_at_ms INTEGER NOT NULL, used_at TEXT NOT NULL DEFAULT '',
  device_id TEXT NOT NULL DEFAULT '') STRICT;
)sql");
}

// 5: a dispense that took from several lots is one handing-out: its movements
// share the id of the first (group_id), so voiding it gives all of it back.
void v5_dispense_groups(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
ALTER TABLE stock_movements ADD COLUMN group_id TEXT;
CREATE INDEX stock_movements_group ON stock_movements(group_id) WHERE group_id IS NOT NULL;
)sql");
}

// 6: changes of this node that a peer refused (quarantined there), as the peer
// reported them back in its push acknowledgement, so staff see what did not
// reach the centre and why.
void v6_peer_refusals(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
CREATE TABLE peer_refusals (
  peer_id TEXT NOT NULL, origin TEXT NOT NULL, origin_seq INTEGER NOT NULL,
  seq INTEGER NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL, reason TEXT NOT NULL,
  reported_at TEXT NOT NULL,
  PRIMARY KEY (peer_id, origin, origin_seq)) STRICT;
)sql");
}

// 7: device registrations sync like the station's other records (a station
// hub's mobile devices reach the centre, a revocation made at either place
// reaches the other), so they get field versions; a mobile device may be
// narrowed to some villages (a JSON array of names), and so may its code.
void v7_device_records(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
ALTER TABLE devices ADD COLUMN villages TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN _v TEXT NOT NULL DEFAULT '{}';
ALTER TABLE devices ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE enrollment_codes ADD COLUMN villages TEXT NOT NULL DEFAULT '[]';
)sql");
}


// The categories present of patient `id` as care_contact.categories (migration 8, below).
std::string category_mask(const std::string& id) {
  return "(SELECT coalesce(sum(CASE s.value WHEN 'elderly' THEN 1 WHEN 'chronic' THEN 2 WHEN 'covid-home' THEN 4 "
         "WHEN 'vulnerable' THEN 8 WHEN 'other' THEN 16 ELSE 0 END), 0) | (CASE WHEN count(*) > count(CASE WHEN "
         "s.value IN ('elderly', 'chronic', 'covid-home', 'vulnerable', 'other') THEN 1 END) THEN 32 ELSE 0 END) "
         "FROM patient_sets s WHERE s.patient_id = " + id + " AND s.field = 'categories' AND s.present)";
}

// 8: what the centre's reconciliation reads (docs/reports.md). Patients get a
// folded name (duplicate candidates: same folded name and birth date) and
// `same_as`, a synced field linking a duplicate record to the one kept. The
// other tables are derived from the events by triggers, in the same
// transaction as the event, so reports over a province read an index rather
// than aggregate every visit and movement (DESIGN: derived values are never
// merged; these are recomputed from each node's own rows, like an index):
//   care_contact    a patient's last non-voided visit (or registration),
//                   whether the patient is active, and what the daily census
//                   counts without reading the patient: created_at,
//                   status_changed_at, same_as, and the categories present as
//                   a bit mask (elderly 1, chronic 2, covid-home 4,
//                   vulnerable 8, other 16, any other value 32);
//   refill_due      per patient and item, the latest non-voided dispense with
//                   days of supply and the date the medicine runs out;
//   stock_balance   on hand per station, item and lot;
//   dispensed_daily quantity dispensed per station, item and day;
//   waste_state     a waste batch's furthest stage;
//   station_activity changes received per station and day (kept by
//                   apply_changes with the node's clock: the log has no
//                   receive time).
// A void counts once however many devices voided the same event.
void v8_reconciliation(db::WriteTxn& txn) {
  db::Db& db = txn.db();
  db.exec(R"sql(
ALTER TABLE patients ADD COLUMN name_fold TEXT NOT NULL DEFAULT '';
ALTER TABLE patients ADD COLUMN same_as TEXT NOT NULL DEFAULT '';
CREATE INDEX patients_name_birth ON patients(name_fold, birth);
CREATE INDEX patients_national_id ON patients(national_id) WHERE national_id != '';
CREATE INDEX patients_same_as ON patients(same_as) WHERE same_as != '';
CREATE INDEX quarantine_status ON quarantine(status, station_id);

-- last_contact: the latest live visit, or the registration when there is none
-- (as the station's own daily report counts it).
CREATE TABLE care_contact (
  patient_id TEXT PRIMARY KEY, station_id TEXT NOT NULL, active INTEGER NOT NULL,
  last_contact TEXT NOT NULL, visited INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL, status_changed_at TEXT NOT NULL, same_as TEXT NOT NULL,
  categories INTEGER NOT NULL) STRICT, WITHOUT ROWID;
-- Covering for the follow-up's candidates (patient_id is the key).
CREATE INDEX care_contact_due ON care_contact(active, last_contact, categories, station_id, same_as);
-- The daily census per station (under care at the end of a day, by category;
-- registered and closed that day), read from these indexes alone.
CREATE INDEX care_contact_census ON care_contact(station_id, created_at, active, status_changed_at, categories, same_as)
  WHERE categories != 0;
CREATE INDEX care_contact_created ON care_contact(created_at, station_id, same_as);
CREATE INDEX care_contact_closed ON care_contact(active, status_changed_at, station_id, same_as) WHERE active = 0;
-- Covid-home patients under care by last contact: a few in a hundred, whose
-- limit (1 day) would otherwise take most of care_contact_due's range.
CREATE INDEX care_contact_covid ON care_contact(active, last_contact, station_id, same_as) WHERE (categories & 4) != 0;
-- Follow-up of one station (its overdue range without reading the others).
CREATE INDEX care_contact_station_due ON care_contact(station_id, active, last_contact, categories, same_as);
CREATE TABLE refill_due (
  patient_id TEXT NOT NULL, item_id TEXT NOT NULL, station_id TEXT NOT NULL, active INTEGER NOT NULL,
  last_dispensed_at TEXT NOT NULL, days_supply INTEGER NOT NULL, due TEXT NOT NULL,
  PRIMARY KEY (patient_id, item_id)) STRICT, WITHOUT ROWID;
CREATE INDEX refill_due_due ON refill_due(active, due);
CREATE TABLE stock_balance (
  station_id TEXT NOT NULL, item_id TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT NOT NULL,
  on_hand INTEGER NOT NULL, PRIMARY KEY (station_id, item_id, lot)) STRICT, WITHOUT ROWID;
CREATE TABLE dispensed_daily (
  station_id TEXT NOT NULL, item_id TEXT NOT NULL, day TEXT NOT NULL, quantity INTEGER NOT NULL,
  PRIMARY KEY (day, station_id, item_id)) STRICT, WITHOUT ROWID;
CREATE TABLE waste_state (
  batch_id TEXT PRIMARY KEY, station_id TEXT NOT NULL, rank INTEGER NOT NULL, stage_at TEXT NOT NULL)
  STRICT, WITHOUT ROWID;
CREATE INDEX waste_state_rank ON waste_state(rank, station_id);
CREATE TABLE station_activity (
  station_id TEXT NOT NULL, day TEXT NOT NULL, received INTEGER NOT NULL,
  PRIMARY KEY (station_id, day)) STRICT, WITHOUT ROWID;

CREATE TRIGGER care_contact_patient AFTER INSERT ON patients BEGIN
  INSERT INTO care_contact(patient_id, station_id, active, last_contact, created_at, status_changed_at, same_as,
                           categories)
  VALUES (new.id, new.station_id, new.status = 'active', new.created_at, new.created_at, new.status_changed_at,
          new.same_as, )sql" + category_mask("new.id") + R"sql()
  ON CONFLICT(patient_id) DO NOTHING;
END;
CREATE TRIGGER care_contact_status AFTER UPDATE OF status ON patients BEGIN
  UPDATE care_contact SET active = (new.status = 'active') WHERE patient_id = new.id;
  UPDATE refill_due SET active = (new.status = 'active') WHERE patient_id = new.id;
END;
CREATE TRIGGER care_contact_fields AFTER UPDATE OF created_at, status_changed_at, same_as ON patients BEGIN
  UPDATE care_contact SET created_at = new.created_at, status_changed_at = new.status_changed_at, same_as = new.same_as
  WHERE patient_id = new.id;
END;
CREATE TRIGGER care_contact_category AFTER INSERT ON patient_sets WHEN new.field = 'categories' BEGIN
  UPDATE care_contact SET categories = )sql" + category_mask("new.patient_id") + R"sql(
  WHERE patient_id = new.patient_id;
END;
CREATE TRIGGER care_contact_category_present AFTER UPDATE OF present ON patient_sets WHEN new.field = 'categories'
BEGIN
  UPDATE care_contact SET categories = )sql" + category_mask("new.patient_id") + R"sql(
  WHERE patient_id = new.patient_id;
END;
CREATE TRIGGER care_contact_visit AFTER INSERT ON visits BEGIN
  UPDATE care_contact SET last_contact = new.at, visited = 1
  WHERE patient_id = new.patient_id AND (visited = 0 OR last_contact < new.at);
END;
CREATE TRIGGER refill_due_dispense AFTER INSERT ON stock_movements
WHEN new.kind = 'dispense' AND new.patient_id IS NOT NULL AND new.days_supply IS NOT NULL BEGIN
  INSERT INTO refill_due(patient_id, item_id, station_id, active, last_dispensed_at, days_supply, due)
  VALUES (new.patient_id, new.item_id, new.station_id,
          coalesce((SELECT status = 'active' FROM patients WHERE id = new.patient_id), 1),
          new.at, new.days_supply, date(substr(new.at, 1, 10), '+' || new.days_supply || ' days'))
  ON CONFLICT(patient_id, item_id) DO UPDATE SET
    last_dispensed_at = excluded.last_dispensed_at, days_supply = excluded.days_supply, due = excluded.due
  WHERE excluded.last_dispensed_at > refill_due.last_dispensed_at
     OR (excluded.last_dispensed_at = refill_due.last_dispensed_at AND excluded.due > refill_due.due);
END;
CREATE TRIGGER stock_balance_movement AFTER INSERT ON stock_movements BEGIN
  INSERT INTO stock_balance(station_id, item_id, lot, expiry, on_hand)
  VALUES (new.station_id, new.item_id, new.lot, new.expiry, new.quantity)
  ON CONFLICT(station_id, item_id, lot) DO UPDATE SET on_hand = on_hand + excluded.on_hand,
    expiry = CASE WHEN stock_balance.expiry = '' THEN excluded.expiry ELSE stock_balance.expiry END;
END;
CREATE TRIGGER dispensed_daily_movement AFTER INSERT ON stock_movements WHEN new.kind = 'dispense' BEGIN
  INSERT INTO dispensed_daily(station_id, item_id, day, quantity)
  VALUES (new.station_id, new.item_id, substr(new.at, 1, 10), -new.quantity)
  ON CONFLICT(day, station_id, item_id) DO UPDATE SET quantity = quantity + excluded.quantity;
END;
CREATE TRIGGER waste_state_batch AFTER INSERT ON waste_batches BEGIN
  INSERT INTO waste_state(batch_id, station_id, rank, stage_at) VALUES (new.id, new.station_id, 0, new.created_at)
  ON CONFLICT(batch_id) DO NOTHING;
END;
CREATE TRIGGER waste_state_stage AFTER INSERT ON waste_stages BEGIN
  UPDATE waste_state SET rank = new.rank, stage_at = new.at WHERE batch_id = new.batch_id AND rank < new.rank;
END;

-- Voids: only the first void of an event takes it back.
CREATE TRIGGER voided_visit AFTER INSERT ON voids
WHEN new.event_kind = 'visit' AND (SELECT count(*) FROM voids WHERE event_id = new.event_id) = 1 BEGIN
  UPDATE care_contact SET last_contact = coalesce(
      (SELECT max(v.at) FROM visits v WHERE v.patient_id = care_contact.patient_id
         AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id)),
      (SELECT created_at FROM patients WHERE id = care_contact.patient_id)),
    visited = EXISTS (SELECT 1 FROM visits v WHERE v.patient_id = care_contact.patient_id
         AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id))
  WHERE patient_id = (SELECT patient_id FROM visits WHERE id = new.event_id);
END;
CREATE TRIGGER voided_movement AFTER INSERT ON voids
WHEN new.event_kind = 'stock_movement' AND (SELECT count(*) FROM voids WHERE event_id = new.event_id) = 1 BEGIN
  UPDATE stock_balance SET on_hand = on_hand - (SELECT quantity FROM stock_movements WHERE id = new.event_id)
  WHERE (station_id, item_id, lot) = (SELECT station_id, item_id, lot FROM stock_movements WHERE id = new.event_id);
  UPDATE dispensed_daily SET quantity = quantity + (SELECT quantity FROM stock_movements WHERE id = new.event_id)
  WHERE (day, station_id, item_id) =
        (SELECT substr(at, 1, 10), station_id, item_id FROM stock_movements WHERE id = new.event_id AND kind = 'dispense');
  DELETE FROM refill_due WHERE (patient_id, item_id) =
        (SELECT patient_id, item_id FROM stock_movements WHERE id = new.event_id AND days_supply IS NOT NULL);
  INSERT INTO refill_due(patient_id, item_id, station_id, active, last_dispensed_at, days_supply, due)
  SELECT m.patient_id, m.item_id, m.station_id,
         coalesce((SELECT status = 'active' FROM patients WHERE id = m.patient_id), 1),
         m.at, m.days_supply, date(substr(m.at, 1, 10), '+' || m.days_supply || ' days')
  FROM stock_movements m, (SELECT patient_id AS pid, item_id AS iid FROM stock_movements
                           WHERE id = new.event_id AND days_supply IS NOT NULL) t
  WHERE m.patient_id = t.pid AND m.item_id = t.iid AND m.kind = 'dispense' AND m.days_supply IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id)
  ORDER BY m.at DESC, date(substr(m.at, 1, 10), '+' || m.days_supply || ' days') DESC LIMIT 1;
END;
CREATE TRIGGER voided_waste_stage AFTER INSERT ON voids
WHEN new.event_kind = 'waste_stage' AND (SELECT count(*) FROM voids WHERE event_id = new.event_id) = 1 BEGIN
  UPDATE waste_state SET
    rank = coalesce((SELECT max(s.rank) FROM waste_stages s WHERE s.batch_id = waste_state.batch_id
                       AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id)), 0),
    stage_at = coalesce((SELECT s.at FROM waste_stages s WHERE s.batch_id = waste_state.batch_id
                       AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC, s.at DESC
                       LIMIT 1), (SELECT created_at FROM waste_batches WHERE id = waste_state.batch_id))
  WHERE batch_id = (SELECT batch_id FROM waste_stages WHERE id = new.event_id);
END;
)sql");
  // Fill them from the rows an older file already holds.
  auto names = db.prepare("SELECT rowid, name FROM patients");
  while (names.step()) {
    db.prepare("UPDATE patients SET name_fold = ?1 WHERE rowid = ?2")
        .bind(1, fold_for_search(names.str(1)))
        .bind(2, names.i64(0))
        .run();
  }
  db.exec(R"sql(
INSERT INTO care_contact(patient_id, station_id, active, last_contact, visited, created_at, status_changed_at,
                         same_as, categories)
SELECT p.id, p.station_id, p.status = 'active',
       coalesce((SELECT max(v.at) FROM visits v WHERE v.patient_id = p.id
                   AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id)), p.created_at),
       EXISTS (SELECT 1 FROM visits v WHERE v.patient_id = p.id
                   AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id)),
       p.created_at, p.status_changed_at, p.same_as, )sql" + category_mask("p.id") + R"sql(
FROM patients p;
INSERT INTO refill_due(patient_id, item_id, station_id, active, last_dispensed_at, days_supply, due)
SELECT patient_id, item_id, station_id, active, at, days_supply, due FROM (
  SELECT m.patient_id, m.item_id, m.station_id, coalesce(p.status = 'active', 1) AS active, m.at, m.days_supply,
         date(substr(m.at, 1, 10), '+' || m.days_supply || ' days') AS due,
         row_number() OVER (PARTITION BY m.patient_id, m.item_id
                            ORDER BY m.at DESC, date(substr(m.at, 1, 10), '+' || m.days_supply || ' days') DESC) AS n
  FROM stock_movements m LEFT JOIN patients p ON p.id = m.patient_id
  WHERE m.kind = 'dispense' AND m.patient_id IS NOT NULL AND m.days_supply IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id)) WHERE n = 1;
INSERT INTO stock_balance(station_id, item_id, lot, expiry, on_hand)
SELECT m.station_id, m.item_id, m.lot, max(m.expiry), sum(m.quantity) FROM stock_movements m
WHERE NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) GROUP BY m.station_id, m.item_id, m.lot;
INSERT INTO dispensed_daily(station_id, item_id, day, quantity)
SELECT m.station_id, m.item_id, substr(m.at, 1, 10), -sum(m.quantity) FROM stock_movements m
WHERE m.kind = 'dispense' AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id)
GROUP BY substr(m.at, 1, 10), m.station_id, m.item_id;
INSERT INTO waste_state(batch_id, station_id, rank, stage_at)
SELECT b.id, b.station_id,
       coalesce((SELECT max(s.rank) FROM waste_stages s WHERE s.batch_id = b.id
                   AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id)), 0),
       coalesce((SELECT s.at FROM waste_stages s WHERE s.batch_id = b.id
                   AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC, s.at DESC
                   LIMIT 1), b.created_at)
FROM waste_batches b;
)sql");
}

// 9: a duplicate's link names the station of the record kept
// (`same_as_station`, its code): a station holds only its own records, so it
// could not otherwise say where the person's other record is. Synced with
// `same_as`, in the same change.
void v9_same_as_station(db::WriteTxn& txn) {
  txn.db().exec("ALTER TABLE patients ADD COLUMN same_as_station TEXT NOT NULL DEFAULT ''");
}

// 10: the centre's reports for one station or one district read that
// station's lapsed refills and 30 days of dispensing through indexes led by
// station_id, instead of the province's (bench/README.md: one station's
// follow-up took 54 ms at 1,000 stations, 2 ms at 100).
void v10_station_report_indexes(db::WriteTxn& txn) {
  txn.db().exec(R"sql(
CREATE INDEX refill_due_station ON refill_due(station_id, active, due);
CREATE INDEX dispensed_daily_station ON dispensed_daily(station_id, day);
)sql");
}

// A device made by /v1/renew (a restored or copied file taking a new
// identity) names the device it was renewed from: revoking that one revokes
// it too (Store::device_by_token_hash), so a stolen token cannot outlive its
// revocation by minting siblings.
void v11_device_renewed_from(db::WriteTxn& txn) {
  txn.db().exec("ALTER TABLE devices ADD COLUMN renewed_from TEXT NOT NULL DEFAULT ''");
}

}  // namespace

const std::vector<Migration>& all() {
  static const std::vector<Migration> kAll = {
      {1, "records, change log, identity", v1_records},
      {2, "diacritics-insensitive patient search", v2_search},
      {3, "sync peers and cursors", v3_peers},
      {4, "conflicts, quarantine, devices and enrollment", v4_sync},
      {5, "dispense groups over several lots", v5_dispense_groups},
      {6, "changes refused by a peer", v6_peer_refusals},
      {7, "device registrations as synced records; village scopes", v7_device_records},
      {8, "reconciliation at the centre: derived tables, duplicate links", v8_reconciliation},
      {9, "the station of a duplicate's kept record", v9_same_as_station},
      {10, "indexes for reports of one station or district", v10_station_report_indexes},
      {11, "the device a renewed device was made from", v11_device_renewed_from},
  };
  return kAll;
}

void apply(db::Db& db, int limit) {
  int current = 0;
  {
    auto s = db.prepare("PRAGMA user_version");
    if (s.step()) current = static_cast<int>(s.i64(0));
  }
  for (const auto& m : all()) {
    if (m.version <= current) continue;
    if (limit > 0 && m.version > limit) break;
    db::WriteTxn txn(db);
    m.apply(txn);
    txn.db().exec("PRAGMA user_version = " + std::to_string(m.version));
    txn.commit();
  }
}

}  // namespace tramsync::migrations
