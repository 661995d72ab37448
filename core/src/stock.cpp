// Items, reserves and stock movements. Stock on hand is always the sum of the
// non-voided movements of an item and lot: never a stored counter.
#include <algorithm>
#include <map>
#include <tuple>

#include "entity.h"
#include "store_impl.h"
#include "tramsync/core/validate.h"

namespace tramsync {

namespace {

constexpr int kMaxDaysSupply = 366;

struct Lot {
  std::string lot, expiry;
  int64_t on_hand = 0;
};

// Lots of an item at this station with their on hand and expiry, earliest expiry first.
std::vector<Lot> item_lots(StoreImpl& s, const std::string& item_id) {
  std::vector<Lot> out;
  auto q = s.db->prepare(
      "SELECT m.lot, coalesce(max(nullif(m.expiry, '')), ''), sum(m.quantity) FROM stock_movements m "
      "WHERE m.station_id = ?1 AND m.item_id = ?2 AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) "
      "GROUP BY m.lot ORDER BY 2, 1");
  q.bind(1, s.station_id()).bind(2, item_id);
  while (q.step()) out.push_back(Lot{q.str(0), q.str(1), q.i64(2)});
  return out;
}

std::string insert_movement(Action& a, Movement m) {
  StoreImpl& s = a.store();
  if (m.id.empty()) m.id = s.ids->new_id();
  m.station_id = s.station_id();
  uint64_t hlc = a.peek_hlc();
  a.db()
      .prepare(
          "INSERT INTO stock_movements(id, station_id, item_id, kind, lot, expiry, quantity, patient_id, days_supply, "
          "reason, counterpart, at, origin, hlc, group_id) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")
      .bind(1, m.id)
      .bind(2, m.station_id)
      .bind(3, m.item_id)
      .bind(4, m.kind)
      .bind(5, m.lot)
      .bind(6, m.expiry)
      .bind(7, m.quantity)
      .bind(8, m.patient_id.empty() ? std::optional<std::string>() : std::optional<std::string>(m.patient_id))
      .bind(9, m.days_supply ? std::optional<int64_t>(*m.days_supply) : std::nullopt)
      .bind(10, m.reason)
      .bind(11, m.counterpart)
      .bind(12, m.at)
      .bind(13, s.device_id())
      .bind(14, hlc)
      .bind(15, m.group_id.empty() ? std::optional<std::string>() : std::optional<std::string>(m.group_id))
      .run();
  json event = {{"id", m.id},         {"station_id", m.station_id},
                {"item_id", m.item_id}, {"kind", m.kind},
                {"lot", m.lot},       {"expiry", m.expiry},
                {"quantity", m.quantity}, {"patient_id", m.patient_id.empty() ? json(nullptr) : json(m.patient_id)},
                {"days_supply", m.days_supply ? json(*m.days_supply) : json(nullptr)},
                {"reason", m.reason}, {"counterpart", m.counterpart},
                {"at", m.at}};
  if (!m.group_id.empty()) event["group_id"] = m.group_id;
  record_event(a, kind::kStockMovement, m.id, m.station_id, event);
  return m.id;
}

Status check_code(const std::string& field, const std::string& code) {
  if (auto st = validate::required_text(field, code, 40); !st) return st;
  if (code.find_first_of(" \t\r\n") != std::string::npos) {
    return Error::invalid(field, "must be a code without spaces", code);
  }
  return {};
}

// Lots of an item as they stand for a movement that takes stock at station-local
// time `at` (staff enter the morning's dispensing in the evening, or yesterday's
// today): each lot's on_hand is what can be taken then without the balance
// going below zero then or at any later movement already recorded. A dispense
// dated before the stock arrived therefore finds none. Earliest expiry first.
std::vector<Lot> item_lots_at(StoreImpl& s, const std::string& item_id, const std::string& at) {
  struct Acc {
    std::string expiry;
    int64_t balance = 0;         // running, in time order
    int64_t at_time = 0;         // balance at `at`
    std::optional<int64_t> low;  // lowest balance after `at`
  };
  std::map<std::string, Acc> lots;
  // INDEXED BY: without statistics SQLite prefers stock_movements_at
  // (station_id, at) to skip the sort, and so read every movement of the
  // station, all items, for each dispense (bench/local_bench.cpp: 90 ms at
  // 1,000,000 events). This reads the one item's movements and sorts them.
  auto q = s.db->prepare(
      "SELECT m.lot, m.expiry, m.quantity, m.at FROM stock_movements m INDEXED BY stock_movements_lot "
      "WHERE m.station_id = ?1 AND m.item_id = ?2 "
      "AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) ORDER BY m.at, m.rowid");
  q.bind(1, s.station_id()).bind(2, item_id);
  while (q.step()) {
    Acc& a = lots[q.str(0)];
    if (!q.str(1).empty()) a.expiry = std::max(a.expiry, q.str(1));
    a.balance += q.i64(2);
    if (q.str(3) <= at) {
      a.at_time = a.balance;
    } else {
      a.low = std::min(a.low.value_or(a.balance), a.balance);
    }
  }
  std::vector<Lot> out;
  for (const auto& [lot, a] : lots) out.push_back(Lot{lot, a.expiry, std::min(a.at_time, a.low.value_or(a.at_time))});
  std::sort(out.begin(), out.end(), [](const Lot& x, const Lot& y) {
    return std::tie(x.expiry, x.lot) < std::tie(y.expiry, y.lot);
  });
  return out;
}

// A lot named by the user: must be one this station has (or had); on_hand as
// item_lots_at(`at`) counts it.
Result<Lot> find_lot(StoreImpl& s, const Item& item, const std::string& lot, const std::string& at) {
  for (auto& l : item_lots_at(s, item.id, at)) {
    if (l.lot == lot) return l;
  }
  return Error::not_found("lot", lot).in("");
}

// "5 viên available at 2026-11-21T08:00" -- the time only when it is not now.
std::string available_text(int64_t n, const Item& item, const std::string& at, const std::string& now,
                           const char* what = "available") {
  std::string t = std::to_string(std::max<int64_t>(n, 0)) + " " + item.unit + " " + what;
  if (at.substr(0, 16) != now.substr(0, 16)) t += " at " + at.substr(0, 16);
  return t;
}

std::string expired_note(const Lot& l) { return "lot " + l.lot + " expired on " + l.expiry; }

// A lot has one expiry: stock arriving in a lot already known must agree with it,
// or expired stock could be handed out under a later date.
Status check_lot_expiry(StoreImpl& s, const Item& item, const std::string& lot, const std::string& expiry) {
  for (const auto& l : item_lots(s, item.id)) {
    if (l.lot == lot && !l.expiry.empty() && l.expiry != expiry) {
      return Error::invalid("expiry", "must match the expiry " + l.expiry + " already recorded for lot " + lot, expiry);
    }
  }
  return {};
}

}  // namespace

Result<Item> StoreImpl::find_item(const std::string& code_or_id) {
  std::string key = validate::trim(code_or_id);
  if (key.empty()) return Error::invalid("item", "must not be empty", code_or_id);
  // The station's own item first, then the central catalogue; ids also accepted.
  auto q = db->prepare(
      "SELECT id, coalesce(station_id, ''), code, name, unit, kind FROM items "
      "WHERE (code = ?1 AND (station_id = ?2 OR station_id IS NULL)) OR id = ?1 "
      "ORDER BY station_id IS NULL, rowid LIMIT 1");
  q.bind(1, key).bind(2, station_id());
  if (!q.step()) return Error::not_found("item", code_or_id);
  return Item{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5)};
}

int64_t StoreImpl::lot_available_at(const std::string& item_id, const std::string& lot, const std::string& at) {
  for (const auto& l : item_lots_at(*this, item_id, at)) {
    if (l.lot == lot) return l.on_hand;
  }
  return 0;
}

Result<Item> Store::find_item(const std::string& code_or_id) {
  if (auto id = impl_->require_identity(); !id) return id.error();
  return impl_->find_item(code_or_id);
}

Result<std::string> Store::add_item(const ItemInput& input) {
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in("item add");
  ItemInput in = input;
  in.code = validate::trim(in.code);
  in.name = validate::trim(in.name);
  in.unit = validate::trim(in.unit);
  Status st = check_code("code", in.code);
  if (st) st = validate::required_text("name", in.name);
  if (st) st = validate::required_text("unit", in.unit, 40);
  if (st) st = validate::one_of("kind", in.kind, kItemKinds);
  if (st && in.reserve && *in.reserve < 0) {
    st = Error::invalid("reserve", "must be 0 or more", std::to_string(*in.reserve));
  }
  if (!st) return std::move(st.error()).in("item add");
  if (auto existing = impl_->find_item(in.code); existing) {
    return Error{ErrorCode::kConflict, "item add", "code", "is already used by item \"" + existing->name + "\"",
                 in.code};
  }
  return impl_->act("item add", [&](Action& a) -> Result<std::string> {
    std::string id = impl_->ids->new_id();
    a.db()
        .prepare("INSERT INTO items(id, station_id, code, name, unit, kind, _v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(1, id)
        // At the centre (no station of its own) an item joins the shared catalogue.
        .bind(2, impl_->station_id().empty() ? std::optional<std::string>() : std::optional(impl_->station_id()))
        .bind(3, in.code)
        .bind(4, in.name)
        .bind(5, in.unit)
        .bind(6, in.kind)
        .bind(7, new_entity_versions(a))
        .run();
    record_entity_insert(a, kind::kItem, id, impl_->station_id(),
                        {{"code", in.code}, {"name", in.name}, {"unit", in.unit}, {"kind", in.kind}});
    if (in.reserve) {
      std::string rid = impl_->station_id() + "/" + id;
      a.db()
          .prepare("INSERT INTO item_reserves(id, station_id, item_id, level, _v) VALUES (?1, ?2, ?3, ?4, ?5)")
          .bind(1, rid)
          .bind(2, impl_->station_id())
          .bind(3, id)
          .bind(4, *in.reserve)
          .bind(5, new_entity_versions(a))
          .run();
      record_entity_insert(a, kind::kItemReserve, rid, impl_->station_id(),
                          {{"item_id", id}, {"level", *in.reserve}});
    }
    return id;
  });
}

Status Store::set_reserve(const std::string& item_code, int64_t level) {
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in("item reserve");
  auto item = impl_->find_item(item_code);
  if (!item) return std::move(item.error()).in("item reserve");
  if (level < 0) return Error::invalid("reserve", "must be 0 or more", std::to_string(level)).in("item reserve");
  return impl_->act("item reserve", [&](Action& a) -> Status {
    // One reserve record per station and item, with an id both devices derive
    // the same way, so two devices setting it offline edit one record.
    std::string rid = impl_->station_id() + "/" + item->id;
    a.db()
        .prepare(
            "INSERT INTO item_reserves(id, station_id, item_id, level) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT(id) DO UPDATE SET level = excluded.level")
        .bind(1, rid)
        .bind(2, impl_->station_id())
        .bind(3, item->id)
        .bind(4, level)
        .run();
    record_entity_update(a, "item_reserves", kind::kItemReserve, rid, impl_->station_id(),
                        {{"item_id", item->id}, {"level", level}});
    return {};
  });
}

Result<std::string> Store::receive(const ReceiveInput& in) {
  const char* ctx = "stock receive";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  std::string lot = validate::trim(in.lot);
  Status st = validate::positive("quantity", in.quantity);
  if (st) st = check_code("lot", lot);
  if (!st) return std::move(st.error()).in(ctx);
  auto expiry = parse_date(validate::trim(in.expiry), "expiry");
  if (!expiry) return std::move(expiry.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  if (expiry->str() < at->substr(0, 10)) {
    return Error::invalid("expiry", "must not be before the receipt date " + at->substr(0, 10), expiry->str()).in(ctx);
  }
  if (auto s = validate::optional_text("source", in.source, 200); !s) return std::move(s.error()).in(ctx);
  if (auto le = check_lot_expiry(*impl_, *item, lot, expiry->str()); !le) return std::move(le.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    Movement m;
    m.item_id = item->id;
    m.kind = "receipt";
    m.lot = lot;
    m.expiry = expiry->str();
    m.quantity = in.quantity;
    m.counterpart = validate::trim(in.source);
    m.at = *at;
    return insert_movement(a, m);
  });
}

Result<std::vector<std::string>> Store::dispense(const DispenseInput& in) {
  const char* ctx = "dispense";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto patient = get_patient(in.patient_id);
  if (!patient) return std::move(patient.error()).in(ctx);
  if (patient->status != "active") {
    return Error::refused("patient", "must be active to receive medicine", patient->status).in(ctx);
  }
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  if (auto st = validate::positive("quantity", in.quantity); !st) return std::move(st.error()).in(ctx);
  if (in.days_supply && (*in.days_supply <= 0 || *in.days_supply > kMaxDaysSupply)) {
    return Error::invalid("days", "must be between 1 and " + std::to_string(kMaxDaysSupply), std::to_string(*in.days_supply))
        .in(ctx);
  }
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  const std::string day = at->substr(0, 10);

  // Decide which lots to take from before writing anything.
  std::vector<std::pair<Lot, int64_t>> takes;
  const std::string now = impl_->local_now();
  if (in.lot) {
    auto lot = find_lot(*impl_, *item, validate::trim(*in.lot), *at);
    if (!lot) return std::move(lot.error()).in(ctx);
    if (!lot->expiry.empty() && lot->expiry < day) {
      return Error::refused("lot", "must not be expired (" + expired_note(*lot) + ")", lot->lot).in(ctx);
    }
    if (lot->on_hand < in.quantity) {
      return Error::refused("quantity",
                            "exceeds stock on hand of lot " + lot->lot + ": " +
                                available_text(lot->on_hand, *item, *at, now),
                            std::to_string(in.quantity))
          .in(ctx);
    }
    takes.emplace_back(*lot, in.quantity);
  } else {
    int64_t available = 0, left = in.quantity;
    for (const auto& l : item_lots_at(*impl_, item->id, *at)) {  // earliest expiry first
      if (l.on_hand <= 0 || (!l.expiry.empty() && l.expiry < day)) continue;
      available += l.on_hand;
      if (left > 0) {
        int64_t take = std::min(left, l.on_hand);
        takes.emplace_back(l, take);
        left -= take;
      }
    }
    if (left > 0) {
      return Error::refused("quantity",
                            "exceeds stock on hand of " + item->code + ": " + available_text(available, *item, *at, now) +
                                " (expired lots excluded)",
                            std::to_string(in.quantity))
          .in(ctx);
    }
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::vector<std::string>> {
    std::vector<std::string> ids;
    // Parts of one handing-out share the first part's id as their group.
    const std::string group = takes.size() > 1 ? impl_->ids->new_id() : "";
    for (const auto& [lot, qty] : takes) {
      Movement m;
      m.group_id = group;
      if (ids.empty()) m.id = group;
      m.item_id = item->id;
      m.kind = "dispense";
      m.lot = lot.lot;
      m.expiry = lot.expiry;
      m.quantity = -qty;
      m.patient_id = patient->id;
      m.days_supply = in.days_supply;
      m.at = *at;
      ids.push_back(insert_movement(a, m));
    }
    return ids;
  });
}

Result<std::vector<std::string>> Store::adjust(const AdjustInput& in) {
  const char* ctx = "stock adjust";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  if (in.quantity == 0) return Error::invalid("quantity", "must not be 0 (give +N or -N)", "0").in(ctx);
  if (auto st = validate::positive("quantity", in.quantity < 0 ? -in.quantity : in.quantity); !st) {
    return std::move(st.error()).in(ctx);
  }
  if (auto st = validate::required_text("reason", in.reason, 500); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  Lot lot;
  if (in.lot) {
    auto l = find_lot(*impl_, *item, validate::trim(*in.lot), *at);
    if (!l) return std::move(l.error()).in(ctx);
    lot = *l;
  } else {
    auto lots = item_lots_at(*impl_, item->id, *at);
    if (lots.size() != 1) {
      std::string names;
      for (const auto& l : lots) names += (names.empty() ? "" : ", ") + l.lot;
      return Error::invalid("lot", lots.empty() ? "must name a lot: " + item->code + " has never been received"
                                                : "must be given: " + item->code + " has several lots (" + names + ")",
                            "")
          .in(ctx);
    }
    lot = lots.front();
  }
  if (in.quantity < 0 && lot.on_hand + in.quantity < 0) {
    return Error::refused("quantity",
                          "would take lot " + lot.lot + " below zero: " +
                              available_text(lot.on_hand, *item, *at, impl_->local_now(), "on hand"),
                          std::to_string(in.quantity))
        .in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::vector<std::string>> {
    Movement m;
    m.item_id = item->id;
    m.kind = "adjustment";
    m.lot = lot.lot;
    m.expiry = lot.expiry;
    m.quantity = in.quantity;
    m.reason = validate::trim(in.reason);
    m.at = *at;
    return std::vector<std::string>{insert_movement(a, m)};
  });
}

Result<std::string> Store::write_off(const WriteoffInput& in) {
  const char* ctx = "stock writeoff";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  if (auto st = validate::positive("quantity", in.quantity); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::one_of("reason", in.reason, kWriteoffReasons); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  auto lot = find_lot(*impl_, *item, validate::trim(in.lot), *at);
  if (!lot) return std::move(lot.error()).in(ctx);
  if (lot->on_hand < in.quantity) {
    return Error::refused("quantity",
                          "exceeds stock on hand of lot " + lot->lot + ": " +
                              available_text(lot->on_hand, *item, *at, impl_->local_now()),
                          std::to_string(in.quantity))
        .in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    Movement m;
    m.item_id = item->id;
    m.kind = "write-off";
    m.lot = lot->lot;
    m.expiry = lot->expiry;
    m.quantity = -in.quantity;
    m.reason = in.reason;
    m.at = *at;
    return insert_movement(a, m);
  });
}

Result<std::string> Store::transfer_out(const TransferInput& in) {
  const char* ctx = "stock transfer-out";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  if (auto st = validate::positive("quantity", in.quantity); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::required_text("to", in.counterpart); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  auto lot = find_lot(*impl_, *item, validate::trim(in.lot), *at);
  if (!lot) return std::move(lot.error()).in(ctx);
  if (lot->on_hand < in.quantity) {
    return Error::refused("quantity",
                          "exceeds stock on hand of lot " + lot->lot + ": " +
                              available_text(lot->on_hand, *item, *at, impl_->local_now()),
                          std::to_string(in.quantity))
        .in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    Movement m;
    m.item_id = item->id;
    m.kind = "transfer-out";
    m.lot = lot->lot;
    m.expiry = lot->expiry;
    m.quantity = -in.quantity;
    m.counterpart = validate::trim(in.counterpart);
    m.at = *at;
    return insert_movement(a, m);
  });
}

Result<std::string> Store::transfer_in(const TransferInput& in) {
  const char* ctx = "stock transfer-in";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto item = impl_->find_item(in.item);
  if (!item) return std::move(item.error()).in(ctx);
  std::string lot = validate::trim(in.lot);
  Status st = validate::positive("quantity", in.quantity);
  if (st) st = check_code("lot", lot);
  if (st) st = validate::required_text("from", in.counterpart);
  if (!st) return std::move(st.error()).in(ctx);
  auto expiry = parse_date(validate::trim(in.expiry), "expiry");
  if (!expiry) return std::move(expiry.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  if (expiry->str() < at->substr(0, 10)) {
    return Error::invalid("expiry", "must not be before the transfer date " + at->substr(0, 10), expiry->str()).in(ctx);
  }
  if (auto le = check_lot_expiry(*impl_, *item, lot, expiry->str()); !le) return std::move(le.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    Movement m;
    m.item_id = item->id;
    m.kind = "transfer-in";
    m.lot = lot;
    m.expiry = expiry->str();
    m.quantity = in.quantity;
    m.counterpart = validate::trim(in.counterpart);
    m.at = *at;
    return insert_movement(a, m);
  });
}

std::vector<ItemStock> Store::stock(const ReportSettings& settings) {
  std::vector<ItemStock> out;
  if (!impl_->require_identity()) return out;
  db::ReadTxn read(*impl_->db);
  const std::string today = impl_->today().str();
  const std::string soon = add_days(impl_->today(), settings.expiring_within_days).str();
  auto q = impl_->db->prepare(
      "SELECT i.id, i.code, i.name, i.unit, i.kind, r.level FROM items i "
      "LEFT JOIN item_reserves r ON r.item_id = i.id AND r.station_id = ?1 "
      "WHERE i.station_id = ?1 OR r.id IS NOT NULL OR EXISTS "
      "(SELECT 1 FROM stock_movements m WHERE m.item_id = i.id AND m.station_id = ?1) ORDER BY i.code");
  q.bind(1, impl_->station_id());
  while (q.step()) {
    ItemStock it;
    it.item_id = q.str(0);
    it.item_code = q.str(1);
    it.item_name = q.str(2);
    it.unit = q.str(3);
    it.kind = q.str(4);
    it.reserve = q.opt_i64(5);
    for (const auto& l : item_lots(*impl_, it.item_id)) {
      StockLine line{it.item_id, it.item_code, it.item_name, it.unit, l.lot, l.expiry, l.on_hand, false, false};
      line.expired = !l.expiry.empty() && l.expiry < today;
      line.expiring_soon = !line.expired && !l.expiry.empty() && l.expiry <= soon && l.on_hand > 0;
      if (line.expired) {
        it.expired_on_hand += l.on_hand;
      } else {
        it.on_hand += l.on_hand;
      }
      if (line.expiring_soon) it.expiring_soon += l.on_hand;
      if (l.on_hand != 0) it.lots.push_back(line);  // used-up lots are history, not stock
    }
    it.under_reserve = it.reserve && it.on_hand < *it.reserve;
    out.push_back(std::move(it));
  }
  return out;
}

std::vector<Movement> Store::patient_dispensings(const std::string& patient_id) {
  std::vector<Movement> out;
  auto q = impl_->db->prepare(
      "SELECT m.id, m.item_id, i.code, m.lot, m.expiry, m.quantity, m.days_supply, m.at, "
      "EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) FROM stock_movements m JOIN items i ON i.id = m.item_id "
      "WHERE m.patient_id = ?1 AND m.kind = 'dispense' ORDER BY m.at DESC, m.id");
  q.bind(1, patient_id);
  while (q.step()) {
    Movement m;
    m.id = q.str(0);
    m.item_id = q.str(1);
    m.item_code = q.str(2);
    m.kind = "dispense";
    m.lot = q.str(3);
    m.expiry = q.str(4);
    m.quantity = -q.i64(5);
    if (auto d = q.opt_i64(6)) m.days_supply = static_cast<int>(*d);
    m.at = q.str(7);
    m.voided = q.i64(8) != 0;
    m.patient_id = patient_id;
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<RefillDue> Store::next_refills(const std::string& patient_id) {
  // Per item, the latest non-voided dispense that gave days of supply.
  std::vector<RefillDue> out;
  auto q = impl_->db->prepare(
      "SELECT m.item_id, i.code, i.name, max(m.at), m.days_supply FROM stock_movements m "
      "JOIN items i ON i.id = m.item_id WHERE m.patient_id = ?1 AND m.kind = 'dispense' "
      "AND m.days_supply IS NOT NULL AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) "
      "GROUP BY m.item_id ORDER BY i.code");
  q.bind(1, patient_id);
  while (q.step()) {
    RefillDue r{q.str(0), q.str(1), q.str(2), q.str(3), ""};
    r.next_refill = add_days(date_of(r.last_dispensed_at), q.i64(4)).str();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace tramsync
