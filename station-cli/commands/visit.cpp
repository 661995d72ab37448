#include <iostream>

#include "cli.h"

namespace tramsync::cli {

namespace {
struct VisitOptions {
  VisitInput in;
  std::optional<std::string> bp, at;
};

// "120/80" -> (120, 80)
Status parse_bp(const std::string& text, VisitInput& in) {
  auto slash = text.find('/');
  auto num = [](const std::string& s, int& out) {
    if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::stoi(s);
    return true;
  };
  int sys = 0, dia = 0;
  if (slash == std::string::npos || !num(text.substr(0, slash), sys) || !num(text.substr(slash + 1), dia)) {
    return Error::invalid("bp", "must be SYS/DIA in mmHg, e.g. 130/85", text).in("visit add");
  }
  in.bp_sys = sys;
  in.bp_dia = dia;
  return {};
}
}  // namespace

void setup_visit(CLI::App& app, Context& ctx) {
  auto* visit = app.add_subcommand("visit", "Home visits and remote consultations");
  visit->require_subcommand(1);
  auto o = std::make_shared<VisitOptions>();
  auto* add = visit->add_subcommand("add", "Record a visit with vital signs (prints the visit id)");
  add->add_option("PATIENT", o->in.patient_id, "Patient id (or its first characters)")->required();
  add->add_option("--temp", o->in.temp_c, "Temperature in °C, e.g. 37.8");
  add->add_option("--spo2", o->in.spo2, "SpO2 in %");
  add->add_option("--bp", o->bp, "Blood pressure SYS/DIA in mmHg, e.g. 130/85");
  add->add_option("--pulse", o->in.pulse, "Pulse per minute");
  add->add_option("--symptom", o->in.symptoms, "A symptom (repeatable)")->expected(1)->take_all();
  add->add_option("--note", o->in.note, "Free note");
  add->add_flag("--refer", o->in.refer, "Referred up (chuyển tuyến)");
  add->add_option("--at", o->at, "When: YYYY-MM-DD[THH:MM], default now; not in the future");
  add->footer("Example:\n  station-cli visit add 3f2a9c1e --temp 37.8 --spo2 96 --bp 130/85 --pulse 88 --symptom ho "
              "--at 2026-11-20T09:30");
  on_run(add, ctx, [o](Context& c) {
    VisitInput in = o->in;
    in.at = o->at;
    if (o->bp) {
      if (auto st = parse_bp(*o->bp, in); !st) return c.fail(st.error());
    }
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->add_visit(in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });

  // void: corrects any event by a later one.
  struct VoidOptions {
    std::string id, reason;
    std::optional<std::string> at;
  };
  auto v = std::make_shared<VoidOptions>();
  auto* vd = app.add_subcommand("void", "Cancel a recorded event (visit, stock movement, waste stage) by a void event");
  vd->add_option("EVENT_ID", v->id, "The event's id (or its first characters)")->required();
  vd->add_option("--reason", v->reason, "Why it is voided")->required();
  vd->add_option("--at", v->at, "When: YYYY-MM-DD[THH:MM], default now");
  vd->footer("Example:\n  station-cli void 9b1c44d0 --reason \"wrong patient\"");
  on_run(vd, ctx, [v](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->void_event(v->id, v->reason, v->at);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
