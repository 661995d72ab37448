// Applying peers' changes (merge), and reading the log for peers.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "applier.h"
#include "store_impl.h"
#include "tramsync/core/text.h"

namespace tramsync {

const char* to_string(ApplyStatus s) {
  switch (s) {
    case ApplyStatus::kApplied: return "applied";
    case ApplyStatus::kDuplicate: return "duplicate";
    case ApplyStatus::kQuarantined: return "quarantined";
  }
  return "?";
}


Result<ApplyOutcome> Store::apply_changes(const std::vector<Change>& batch, const ApplyContext& ctx,
                                          const std::optional<CursorUpdate>& cursor) {
  return impl_->act("sync", [&](Action& a) -> Result<ApplyOutcome> {
    ApplyOutcome out;
    std::map<std::string, int64_t> received;  // applied per station, for station_activity
    // Which of the batch's change identities this node already holds in its
    // log or in quarantine, read with one range query per origin rather than
    // two lookups per change (a push is nearly always all new, and a batch
    // holds one or a few origins). Identities written by this batch are added
    // as it goes, so a change repeated within the batch is still recognised.
    std::map<std::string, std::set<int64_t>> in_log, in_quarantine;
    {
      std::map<std::string, std::pair<int64_t, int64_t>> range;
      for (const auto& c : batch) {
        auto [it, fresh] = range.try_emplace(c.origin, c.origin_seq, c.origin_seq);
        if (!fresh) it->second = {std::min(it->second.first, c.origin_seq), std::max(it->second.second, c.origin_seq)};
      }
      for (const auto& [origin, r] : range) {
        for (auto [table, into] : {std::pair{"changes", &in_log}, std::pair{"quarantine", &in_quarantine}}) {
          auto q = a.db().prepare(std::string("SELECT origin_seq FROM ") + table +
                                  " WHERE origin = ?1 AND origin_seq BETWEEN ?2 AND ?3");
          q.bind(1, origin).bind(2, r.first).bind(3, r.second);
          auto& seqs = (*into)[origin];
          while (q.step()) seqs.insert(q.i64(0));
        }
      }
    }
    for (const auto& c : batch) {
      ApplyResult r{c.seq, c.origin, c.origin_seq, ApplyStatus::kApplied, ""};
      out.acked_through = std::max(out.acked_through, c.seq);
      auto& logged = in_log[c.origin];
      auto& held = in_quarantine[c.origin];
      // Seen before? The identity (origin, origin_seq) is the same on every node.
      if (logged.count(c.origin_seq)) {
        auto q = a.db().prepare("SELECT kind, record_id, payload, hlc FROM changes WHERE origin = ?1 AND origin_seq = ?2");
        q.bind(1, c.origin).bind(2, c.origin_seq);
        if (q.step()) {
          bool same = q.str(0) == c.kind && q.str(1) == c.record_id && static_cast<uint64_t>(q.i64(3)) == c.hlc &&
                      json::parse(q.str(2)) == json::parse(c.payload, nullptr, false);
          if (!same) {
            return Error{ErrorCode::kConflict, "", "origin_seq",
                         "reuses a change number this node already has with other content: the sending file was "
                         "restored from a backup or copied; it must take a new device identity before syncing",
                         c.origin + "/" + std::to_string(c.origin_seq)};
          }
          r.status = ApplyStatus::kDuplicate;
          ++out.duplicates;
          out.results.push_back(r);
          continue;
        }
      }
      // A change held in quarantine before is judged again like a new one: a
      // change refused from a sender outside its scope is taken when its own
      // station sends it. One the centre already decided on stays decided: a
      // released one (perhaps taken at the centre's time) is a duplicate, a
      // dropped one is answered with the drop.
      if (held.count(c.origin_seq)) {
        auto q = a.db().prepare(
            "SELECT status, decision FROM quarantine WHERE origin = ?1 AND origin_seq = ?2 AND status IN "
            "('released', 'dropped')");
        q.bind(1, c.origin).bind(2, c.origin_seq);
        if (q.step()) {
          if (q.str(0) == "released") {
            r.status = ApplyStatus::kDuplicate;
            ++out.duplicates;
          } else {
            r.status = ApplyStatus::kQuarantined;
            r.reason = "dropped at review: " + q.str(1);
            ++out.quarantined;
          }
          out.results.push_back(r);
          continue;
        }
      }
      std::string reason = sender_refusal(a, c, ctx);
      if (reason.empty()) {
        ApplyStep step = apply_one(a, out, c);
        r.status = step.status;
        reason = step.reason;
      }
      if (!reason.empty()) {
        // Held once, whatever number of times it arrives.
        a.db()
            .prepare(
                "INSERT INTO quarantine(received_at, from_peer, origin, origin_seq, hlc, station_id, kind, record_id, "
                "payload, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                "ON CONFLICT(origin, origin_seq) DO NOTHING")
            .bind(1, impl_->local_now())
            .bind(2, ctx.from_peer)
            .bind(3, c.origin)
            .bind(4, c.origin_seq)
            .bind(5, c.hlc)
            .bind(6, c.station_id)
            .bind(7, c.kind)
            .bind(8, c.record_id)
            .bind(9, c.payload)
            .bind(10, reason)
            .run();
        held.insert(c.origin_seq);
        r.status = ApplyStatus::kQuarantined;
        r.reason = reason;
        ++out.quarantined;
      } else if (r.status == ApplyStatus::kDuplicate) {
        ++out.duplicates;
      } else {
        a.append_remote(c, ctx.from_peer);
        logged.insert(c.origin_seq);
        ++out.applied;
        ++received[c.station_id];
        // Settles a quarantine entry the same change left before, if any.
        if (held.count(c.origin_seq)) a.db()
            .prepare(
                "UPDATE quarantine SET status = 'applied', decided_at = ?1, decision = ?2 "
                "WHERE origin = ?3 AND origin_seq = ?4 AND status = 'held'")
            .bind(1, impl_->local_now())
            .bind(2, "arrived again from " + ctx.from_peer + " and was applied")
            .bind(3, c.origin)
            .bind(4, c.origin_seq)
            .run();
      }
      out.results.push_back(r);
    }
    const std::string today = impl_->local_now().substr(0, 10);
    for (const auto& [station, n] : received) {
      a.db()
          .prepare(
              "INSERT INTO station_activity(station_id, day, received) VALUES (?1, ?2, ?3) "
              "ON CONFLICT(station_id, day) DO UPDATE SET received = received + excluded.received")
          .bind(1, station)
          .bind(2, today)
          .bind(3, n)
          .run();
    }
    if (cursor) {
      a.db()
          .prepare(
              "INSERT INTO peers(id, pull_cursor) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET "
              "pull_cursor = max(pull_cursor, excluded.pull_cursor)")
          .bind(1, cursor->peer_id)
          .bind(2, cursor->pull_cursor)
          .run();
    }
    return out;
  });
}

namespace {
// Reads a page of changes from `q` (in log order): at most `limit` changes and
// about `max_bytes` of payload (always at least one). A change `keep` refuses
// is stepped over, at most kMaxSkipped of them per page so one request stays
// short however far the next kept change is; the cursor moves past them.
constexpr int64_t kMaxSkipped = 20'000;

LogPage read_page(db::Stmt& q, int64_t limit, int64_t max_bytes, int64_t after,
                  const std::function<bool(const Change&)>& keep = nullptr) {
  LogPage page;
  page.next = after;
  int64_t skipped = 0;
  while (q.step()) {
    Change c = read_change(q);
    if (keep && !keep(c)) {
      page.next = c.seq;
      if (++skipped >= kMaxSkipped) {
        page.more = true;
        break;
      }
      continue;
    }
    if (static_cast<int64_t>(page.changes.size()) >= limit ||
        (!page.changes.empty() && page.bytes + static_cast<int64_t>(c.payload.size()) > max_bytes)) {
      page.more = true;
      break;
    }
    page.bytes += static_cast<int64_t>(c.payload.size());
    page.next = c.seq;
    page.changes.push_back(std::move(c));
  }
  return page;
}
}  // namespace

namespace {

// Whether a change is for a peer narrowed to some villages, or kept from
// device registrations (Scope::villages, Scope::devices). A record is judged
// by where it is now: a patient's village, the patient or household a visit,
// a waste batch or a dispense belongs to, the event a void cancels.
class ScopeFilter {
 public:
  ScopeFilter(db::Db& db, const Scope& scope) : db_(db), scope_(scope) {}

  bool allows(const Change& c) {
    if (c.kind == kind::kDevice) return scope_.devices;
    if (scope_.villages.empty()) return true;
    return of_record(c.kind, c.record_id);
  }

 private:
  bool of_record(const std::string& k, const std::string& id) {
    const std::string key = k + "/" + id;
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    bool in = true;  // the station's own records, the catalogue, and kinds this version does not know
    if (k == kind::kPatient) {
      in = village_of("SELECT village FROM patients WHERE id = ?1", id);
    } else if (k == kind::kHousehold) {
      in = village_of("SELECT village FROM households WHERE id = ?1", id);
    } else if (k == kind::kVisit || k == kind::kStockMovement) {
      auto pid = lookup(k == kind::kVisit ? "SELECT coalesce(patient_id, '') FROM visits WHERE id = ?1"
                                          : "SELECT coalesce(patient_id, '') FROM stock_movements WHERE id = ?1",
                        id);
      if (pid && !pid->at(0).empty()) in = of_record(kind::kPatient, pid->at(0));
    } else if (k == kind::kWasteBatch) {
      // A batch of a patient or of a household; one of neither belongs to the station.
      auto owner = lookup("SELECT coalesce(patient_id, ''), coalesce(household_id, '') FROM waste_batches WHERE id = ?1",
                          id);
      if (owner && !owner->at(0).empty()) {
        in = of_record(kind::kPatient, owner->at(0));
      } else if (owner && !owner->at(1).empty()) {
        in = of_record(kind::kHousehold, owner->at(1));
      }
    } else if (k == kind::kWasteStage) {
      if (auto b = lookup("SELECT batch_id FROM waste_stages WHERE id = ?1", id)) in = of_record(kind::kWasteBatch, b->at(0));
    } else if (k == kind::kVoid) {
      auto target = lookup("SELECT event_kind, event_id FROM voids WHERE id = ?1", id);
      if (target && target->at(0) != kind::kVoid) in = of_record(target->at(0), target->at(1));
    }
    if (cache_.size() > 100'000) cache_.clear();
    cache_[key] = in;
    return in;
  }

  // The columns of the row `sql` selects for `id` (nullopt: no such record).
  std::optional<std::vector<std::string>> lookup(const char* sql, const std::string& id) {
    auto q = db_.prepare(sql);
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    std::vector<std::string> row;
    for (int i = 0; i < q.column_count(); ++i) row.push_back(q.str(i));
    return row;
  }

  bool village_of(const char* sql, const std::string& id) {
    auto v = lookup(sql, id);
    if (!v) return true;
    const std::string f = fold_for_search(v->at(0));
    return std::find(scope_.villages.begin(), scope_.villages.end(), f) != scope_.villages.end();
  }

  db::Db& db_;
  const Scope& scope_;
  std::map<std::string, bool> cache_;
};

}  // namespace

LogPage Store::changes_for_peer(int64_t after, int64_t limit, int64_t max_bytes, const Scope& scope,
                                const std::string& exclude_origin) {
  db::ReadTxn read(*impl_->db);
  // Never what the peer made, nor what it sent here (relayed for others).
  const std::string select = std::string("SELECT ") + kChangeColumns +
                             " FROM changes WHERE seq > ?1 AND origin != ?2 AND coalesce(from_peer, '') != ?2";
  // Rows are read lazily, in seq order, only until the page is full: no
  // sort. A station's peer reads its own station's records and the shared
  // catalogue (station ""): two ordered scans of changes_station merged
  // (`station_id IN (?, '')` would sort the station's whole log first).
  auto q = impl_->db->prepare(scope.all ? select + " ORDER BY seq"
                                        : select + " AND station_id = ?3 UNION ALL " + select +
                                              " AND station_id = '' ORDER BY seq");
  q.bind(1, after).bind(2, exclude_origin);
  if (!scope.all) q.bind(3, scope.station_id);
  ScopeFilter filter(*impl_->db, scope);
  const bool filtered = !scope.villages.empty() || !scope.devices;
  LogPage page = read_page(q, limit, max_bytes, after,
                           filtered ? std::function<bool(const Change&)>([&](const Change& c) { return filter.allows(c); })
                                    : nullptr);
  if (!page.more) {
    // Everything up to the end of the log was looked at, including changes the
    // peer may not see: skip past them for good.
    q.release();
    page.next = std::max(page.next, last_seq());
  }
  return page;
}

// What a node sends up to a peer: its own changes and those its own devices
// sent it (a hub relays its mobile devices'), never what it received from a
// server it syncs with -- not back to that server, and not on to another (a
// mobile device that syncs with its hub and with the centre is no relay
// between them). ?2 is the peer.
const char* const kPushable =
    "coalesce(from_peer, '') != ?2 AND coalesce(from_peer, '') NOT IN (SELECT id FROM peers)";

LogPage Store::changes_to_push(const std::string& peer_id, int64_t limit, int64_t max_bytes) {
  db::ReadTxn read(*impl_->db);
  int64_t after = 0;
  if (auto p = peer(peer_id)) after = p->push_cursor;
  auto q = impl_->db->prepare(std::string("SELECT ") + kChangeColumns + " FROM changes WHERE seq > ?1 AND " +
                              kPushable + " ORDER BY seq");
  q.bind(1, after).bind(2, peer_id);
  return read_page(q, limit, max_bytes, after);
}

int64_t Store::count_to_push(const std::string& peer_id) {
  int64_t after = 0;
  if (auto p = peer(peer_id)) after = p->push_cursor;
  auto q = impl_->db->prepare(std::string("SELECT count(*) FROM changes WHERE seq > ?1 AND ") + kPushable);
  q.bind(1, after).bind(2, peer_id);
  return q.step() ? q.i64(0) : 0;
}

int64_t Store::max_origin_seq(const std::string& origin) {
  // Held or decided in quarantine counts too: the number was received.
  auto q = impl_->db->prepare(
      "SELECT max(coalesce((SELECT max(origin_seq) FROM changes WHERE origin = ?1), 0), "
      "coalesce((SELECT max(origin_seq) FROM quarantine WHERE origin = ?1), 0))");
  q.bind(1, origin);
  return q.step() ? q.i64(0) : 0;
}

int64_t Store::last_seq() {
  auto q = impl_->db->prepare("SELECT coalesce(max(seq), 0) FROM changes");
  return q.step() ? q.i64(0) : 0;
}

namespace {
const char* const kPeerSelect = "SELECT id, url, push_cursor, pull_cursor, last_sync_at, extra FROM peers ";
PeerState read_peer(db::Stmt& q) { return PeerState{q.str(0), q.str(1), q.i64(2), q.i64(3), q.str(4), q.str(5)}; }
}  // namespace

std::optional<PeerState> Store::peer(const std::string& id) {
  auto q = impl_->db->prepare(std::string(kPeerSelect) + "WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return read_peer(q);
}

std::vector<PeerState> Store::peers() {
  std::vector<PeerState> out;
  auto q = impl_->db->prepare(std::string(kPeerSelect) + "ORDER BY rowid");
  while (q.step()) out.push_back(read_peer(q));
  return out;
}

Status Store::save_peer(const PeerState& p) {
  return impl_->act("peer", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "INSERT INTO peers(id, url, extra) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET url = excluded.url, "
            "extra = excluded.extra")
        .bind(1, p.id)
        .bind(2, p.url)
        .bind(3, p.settings.empty() ? std::string("{}") : p.settings)
        .run();
    return {};
  });
}

Status Store::acknowledge_push(const std::string& peer_id, int64_t acked_through,
                               const std::vector<ApplyResult>& refused) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "INSERT INTO peers(id, push_cursor) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET "
            "push_cursor = max(push_cursor, excluded.push_cursor)")
        .bind(1, peer_id)
        .bind(2, acked_through)
        .run();
    const std::string now = impl_->local_now();
    for (const auto& x : refused) {
      a.db()
          .prepare(
              "INSERT INTO peer_refusals(peer_id, origin, origin_seq, seq, kind, record_id, reason, reported_at) "
              "SELECT ?1, ?2, ?3, ?4, coalesce(c.kind, ''), coalesce(c.record_id, ''), ?5, ?6 "
              "FROM (SELECT 1) LEFT JOIN changes c ON c.origin = ?2 AND c.origin_seq = ?3 WHERE 1 "
              "ON CONFLICT(peer_id, origin, origin_seq) DO UPDATE SET reason = excluded.reason, "
              "reported_at = excluded.reported_at")
          .bind(1, peer_id)
          .bind(2, x.origin)
          .bind(3, x.origin_seq)
          .bind(4, x.seq)
          .bind(5, x.reason)
          .bind(6, now)
          .run();
    }
    return {};
  });
}

std::vector<PeerRefusal> Store::peer_refusals() {
  std::vector<PeerRefusal> out;
  auto q = impl_->db->prepare(
      "SELECT peer_id, origin, origin_seq, seq, kind, record_id, reason, reported_at FROM peer_refusals "
      "ORDER BY reported_at, seq");
  while (q.step()) {
    out.push_back(PeerRefusal{q.str(0), q.str(1), q.i64(2), q.i64(3), q.str(4), q.str(5), q.str(6), q.str(7)});
  }
  return out;
}

int64_t Store::acked_own_origin_seq(const std::string& peer_id) {
  auto p = peer(peer_id);
  if (!p) return 0;
  auto q = impl_->db->prepare(
      "SELECT coalesce(max(origin_seq), 0) FROM changes WHERE seq <= ?1 AND origin = "
      "(SELECT value FROM meta WHERE key = 'device_id')");
  q.bind(1, p->push_cursor);
  return q.step() ? q.i64(0) : 0;
}

Status Store::reset_peer_cursors(const std::string& peer_id, bool push, bool pull) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "UPDATE peers SET push_cursor = CASE WHEN ?2 THEN 0 ELSE push_cursor END, "
            "pull_cursor = CASE WHEN ?3 THEN 0 ELSE pull_cursor END WHERE id = ?1")
        .bind(1, peer_id)
        .bind(2, push)
        .bind(3, pull)
        .run();
    return {};
  });
}

Status Store::mark_synced(const std::string& peer_id) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare("UPDATE peers SET last_sync_at = ?1 WHERE id = ?2")
        .bind(1, impl_->local_now())
        .bind(2, peer_id)
        .run();
    return {};
  });
}

}  // namespace tramsync

namespace tramsync {

Status Store::take_new_origin(const std::string& new_device_id, int64_t keep_through, const PeerState& peer) {
  auto r = impl_->act("new device identity", [&](Action& a) -> Status {
    const std::string old = impl_->device_id();
    if (new_device_id.empty() || new_device_id == old) {
      return Error::invalid("device_id", "must be a new identity", new_device_id);
    }
    int64_t from_hlc = -1;  // the first renumbered change's; every later own write is newer (the clock is monotonic)
    {
      auto q = a.db().prepare("SELECT min(hlc) FROM changes WHERE origin = ?1 AND origin_seq > ?2");
      q.bind(1, old).bind(2, keep_through);
      if (q.step() && !q.is_null(0)) from_hlc = q.i64(0);
    }
    if (from_hlc >= 0) {
      a.db()
          .prepare("UPDATE changes SET origin = ?1, origin_seq = origin_seq - ?3 WHERE origin = ?2 AND origin_seq > ?3")
          .bind(1, new_device_id)
          .bind(2, old)
          .bind(3, keep_through)
          .run();
      // A version [hlc, origin, ...] one of the renumbered changes wrote.
      auto rename = [&](json& ver) {
        if (!ver.is_array() || ver.size() < 2 || ver[1] != old || !ver[0].is_number_integer() ||
            ver[0].get<int64_t>() < from_hlc) {
          return false;
        }
        ver[1] = new_device_id;
        return true;
      };
      // The renumbered changes' own bases: an edit based on an earlier one of
      // them names it, and the server must find it under its new origin, or
      // the edit would be taken for a rival (a false conflict everywhere).
      {
        std::vector<std::pair<int64_t, std::string>> rewrite;  // seq, new payload
        auto q = a.db().prepare("SELECT seq, payload FROM changes WHERE origin = ?1 AND instr(payload, ?2) > 0");
        q.bind(1, new_device_id).bind(2, old);
        while (q.step()) {
          json payload = json::parse(q.str(1), nullptr, false);
          if (!payload.is_object() || !payload.contains("base") || !payload["base"].is_object()) continue;
          bool changed = false;
          for (auto& [field, ver] : payload["base"].items()) changed |= rename(ver);
          if (changed) rewrite.emplace_back(q.i64(0), payload.dump());
        }
        for (const auto& [seq, payload] : rewrite) {
          a.db().prepare("UPDATE changes SET payload = ?1 WHERE seq = ?2").bind(1, payload).bind(2, seq).run();
        }
      }
      // What those changes wrote here carries their origin too: the events'
      // `origin`, the set members', and each field version [hlc, origin] in `_v`.
      std::vector<std::pair<std::string, bool>> tables;  // name, has _v (else origin + hlc columns)
      {
        auto t = a.db().prepare(
            "SELECT m.name, sum(c.name = '_v'), sum(c.name IN ('origin', 'hlc')) FROM sqlite_schema m, "
            "pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT IN ('changes', 'quarantine') "
            "GROUP BY m.name");
        while (t.step()) {
          if (t.i64(1) > 0) tables.emplace_back(t.str(0), true);
          if (t.i64(2) == 2) tables.emplace_back(t.str(0), false);
        }
      }
      for (const auto& [table, versions] : tables) {
        const std::string quoted = "\"" + table + "\"";
        if (!versions) {
          a.db()
              .prepare("UPDATE " + quoted + " SET origin = ?1 WHERE origin = ?2 AND hlc >= ?3")
              .bind(1, new_device_id)
              .bind(2, old)
              .bind(3, from_hlc)
              .run();
          continue;
        }
        std::vector<std::pair<int64_t, std::string>> rewrite;  // rowid, new _v
        {
          auto q = a.db().prepare("SELECT rowid, _v FROM " + quoted + " WHERE instr(_v, ?1) > 0");
          q.bind(1, old);
          while (q.step()) {
            json v = json::parse(q.str(1), nullptr, false);
            if (!v.is_object()) continue;
            bool changed = false;
            for (auto& [field, ver] : v.items()) {
              // [hlc, origin] or [hlc, origin, [base hlc, base origin]]: the
              // base may be one of the renumbered changes too.
              changed |= rename(ver);
              if (ver.is_array() && ver.size() == 3) changed |= rename(ver[2]);
            }
            if (changed) rewrite.emplace_back(q.i64(0), v.dump());
          }
        }
        for (const auto& [rowid, v] : rewrite) {
          a.db().prepare("UPDATE " + quoted + " SET _v = ?1 WHERE rowid = ?2").bind(1, v).bind(2, rowid).run();
        }
      }
    }
    impl_->set_meta(a.txn(), "device_id", new_device_id);
    a.db()
        .prepare("UPDATE peers SET url = ?2, extra = ?3 WHERE id = ?1")
        .bind(1, peer.id)
        .bind(2, peer.url)
        .bind(3, peer.settings)
        .run();
    return {};
  });
  impl_->ident.reset();
  return r;
}

}  // namespace tramsync
