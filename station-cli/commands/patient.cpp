#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "output.h"
#include "tramsync/core/csv_import.h"

namespace tramsync::cli {

namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

struct AddOptions {
  PatientInput in;
  std::string household;
};

struct UpdateOptions {
  std::string id;
  std::string name, sex, birth, village, household, phone, national_id, status;
  std::vector<std::string> add_category, remove_category, add_condition, remove_condition;
};

struct ListOptions {
  PatientQuery q;
  int covid_days = 1, other_days = 30;
};

struct ImportOptions {
  std::string file;
  bool skip_invalid = false;
};

int run_add(Context& c, AddOptions& o) {
  auto store = c.open();
  if (!store) return kExitFailed;
  PatientInput in = o.in;
  if (!o.household.empty()) in.household_id = o.household;
  auto id = store->add_patient(in);
  if (!id) return c.fail(id.error());
  if (c.as_json) {
    c.print_json({{"id", *id}});
  } else {
    std::cout << *id << '\n';
  }
  return kExitOk;
}

int run_list(Context& c, ListOptions& o) {
  auto store = c.open();
  if (!store) return kExitFailed;
  ReportSettings settings;
  settings.covid_overdue_days = o.covid_days;
  settings.other_overdue_days = o.other_days;
  auto rows = store->list_patients(o.q, settings);
  if (c.as_json) {
    json arr = json::array();
    for (const auto& r : rows) arr.push_back(to_json(r));
    c.print_json(arr);
    return kExitOk;
  }
  Table t({"ID", "NAME", "SEX", "BORN", "VILLAGE", "CATEGORIES", "STATUS", "LAST VISIT", ""});
  for (const auto& r : rows) {
    const Patient& p = r.patient;
    t.add({short_id(p.id), p.name, p.sex, p.birth, p.village, join(p.categories), p.status,
           r.last_visit.empty() ? "never" : r.last_visit.substr(0, 16),
           r.overdue ? "OVERDUE " + std::to_string(r.days_since_contact) + "d" : ""});
  }
  t.print(std::cout);
  std::cout << rows.size() << " patient" << (rows.size() == 1 ? "" : "s") << '\n';
  return kExitOk;
}

int run_show(Context& c, const std::string& id) {
  auto store = c.open();
  if (!store) return kExitFailed;
  auto p = store->get_patient(id);
  if (!p) return c.fail(std::move(p.error()).in("patient show"));
  auto visits = store->patient_visits(p->id);
  auto dispensings = store->patient_dispensings(p->id);
  auto refills = store->next_refills(p->id);
  auto waste = store->patient_waste(p->id);
  if (c.as_json) {
    json j = to_json(*p);
    for (auto [key, arr] : {std::pair{"visits", json::array()}, std::pair{"dispensings", json::array()},
                            std::pair{"next_refills", json::array()}, std::pair{"waste", json::array()}}) {
      j[key] = arr;
    }
    for (const auto& v : visits) j["visits"].push_back(to_json(v));
    for (const auto& m : dispensings) j["dispensings"].push_back(to_json(m));
    for (const auto& r : refills) j["next_refills"].push_back(to_json(r));
    for (const auto& b : waste) j["waste"].push_back(to_json(b));
    c.print_json(j);
    return kExitOk;
  }
  std::cout << p->name << "  (" << p->id << ")\n"
            << "Sex/born:    " << p->sex << ", " << p->birth << '\n'
            << "Village:     " << p->village << '\n'
            << "Household:   " << (p->household_id.empty() ? "-" : p->household_id) << '\n'
            << "Categories:  " << (p->categories.empty() ? "-" : join(p->categories, ", ")) << '\n'
            << "Conditions:  " << (p->conditions.empty() ? "-" : join(p->conditions, ", ")) << '\n'
            << "Phone:       " << (p->phone.empty() ? "-" : p->phone) << '\n'
            << "National id: " << (p->national_id.empty() ? "-" : p->national_id) << '\n'
            << (p->same_as.empty() ? ""
                                   : "Same person: patient " + p->same_as +
                                         (p->same_as_station.empty() ? "" : " of station " + p->same_as_station) +
                                         " (linked at the centre; both histories are kept)\n")
            << "Status:      " << p->status
            << (p->status_changed_at.empty() ? "" : " since " + p->status_changed_at.substr(0, 16)) << '\n'
            << "Registered:  " << p->created_at.substr(0, 16) << "\n\n";
  std::cout << "Visits\n";
  Table tv({"ID", "AT", "TEMP", "SPO2", "BP", "PULSE", "SYMPTOMS", "REFER", ""});
  for (const auto& v : visits) {
    tv.add({short_id(v.id), v.at.substr(0, 16), v.temp_c ? fmt_number(*v.temp_c) : "",
            v.spo2 ? std::to_string(*v.spo2) : "",
            v.bp_sys ? std::to_string(*v.bp_sys) + "/" + std::to_string(*v.bp_dia) : "",
            v.pulse ? std::to_string(*v.pulse) : "", join(v.symptoms, ", "), v.refer ? "yes" : "",
            v.voided ? "VOIDED" : ""});
  }
  if (tv.empty()) std::cout << "  none\n"; else tv.print(std::cout);
  std::cout << "\nDispensings\n";
  Table td({"ID", "AT", "ITEM", "LOT", "QTY", "DAYS", ""});
  for (const auto& m : dispensings) {
    td.add({short_id(m.id), m.at.substr(0, 16), m.item_code, m.lot, std::to_string(m.quantity),
            m.days_supply ? std::to_string(*m.days_supply) : "", m.voided ? "VOIDED" : ""});
  }
  if (td.empty()) std::cout << "  none\n"; else td.print(std::cout);
  std::cout << "\nNext refills\n";
  Table tr({"ITEM", "NAME", "LAST DISPENSED", "NEXT REFILL"});
  for (const auto& r : refills) tr.add({r.item_code, r.item_name, r.last_dispensed_at.substr(0, 10), r.next_refill});
  if (tr.empty()) std::cout << "  none\n"; else tr.print(std::cout);
  std::cout << "\nWaste collected from this patient\n";
  Table tw({"BATCH", "KIND", "BAGS", "KG", "STAGE", "AGE"});
  for (const auto& b : waste) {
    tw.add({short_id(b.id), b.kind, std::to_string(b.bags), fmt_number(b.weight_kg), b.stage,
            std::to_string(b.age_days) + "d"});
  }
  if (tw.empty()) std::cout << "  none\n"; else tw.print(std::cout);
  return kExitOk;
}

int run_update(Context& c, UpdateOptions& o, CLI::App* cmd) {
  auto store = c.open();
  if (!store) return kExitFailed;
  PatientUpdate up;
  auto set = [&](const char* opt, const std::string& v, std::optional<std::string>& dst) {
    if (cmd->count(opt) > 0) dst = v;
  };
  set("--name", o.name, up.name);
  set("--sex", o.sex, up.sex);
  set("--birth", o.birth, up.birth);
  set("--village", o.village, up.village);
  set("--household", o.household, up.household_id);
  set("--phone", o.phone, up.phone);
  set("--national-id", o.national_id, up.national_id);
  set("--status", o.status, up.status);
  up.add_categories = o.add_category;
  up.remove_categories = o.remove_category;
  up.add_conditions = o.add_condition;
  up.remove_conditions = o.remove_condition;
  auto st = store->update_patient(o.id, up);
  if (!st) return c.fail(st.error());
  auto p = store->get_patient(o.id);
  if (!p) return c.fail(p.error());
  if (c.as_json) {
    c.print_json(to_json(*p));
  } else {
    std::cout << "Updated " << p->name << " (" << p->id << ")\n";
  }
  return kExitOk;
}

int run_import(Context& c, ImportOptions& o) {
  std::ifstream f(o.file, std::ios::binary);
  if (!f) return c.fail("patient import: file " + o.file + " cannot be read");
  std::stringstream buf;
  buf << f.rdbuf();
  std::string text = buf.str();
  auto rows = csv::patient_rows(text);
  if (!rows) return c.fail(rows.error());
  auto store = c.open();
  if (!store) return kExitFailed;
  // Rows that could not be read and rows that break a rule are all reported at once.
  const bool unreadable = !rows->errors.empty();
  ImportResult r = store->import_patients(rows->rows, o.skip_invalid, /*validate_only=*/unreadable && !o.skip_invalid);
  r.rejected.insert(r.rejected.end(), rows->errors.begin(), rows->errors.end());
  std::sort(r.rejected.begin(), r.rejected.end(),
            [](const ImportRowError& a, const ImportRowError& b) { return a.line < b.line; });
  bool failed = r.imported == 0 && !r.rejected.empty() && !o.skip_invalid;
  if (c.as_json) {
    json rejected = json::array();
    for (const auto& e : r.rejected) rejected.push_back({{"line", e.line}, {"error", e.message}});
    json j = {{"imported", r.imported}, {"rejected", rejected}};
    if (failed) j["error"] = "nothing imported: " + std::to_string(r.rejected.size()) + " invalid row(s)";
    c.print_json(j);
  } else {
    for (const auto& e : r.rejected) std::cerr << o.file << ":" << e.line << ": " << e.message << '\n';
    if (failed) {
      std::cerr << "error: nothing imported: " << r.rejected.size()
                << " invalid row(s); fix them or use --skip-invalid to import the others\n";
    } else {
      std::cout << "Imported " << r.imported << " patient" << (r.imported == 1 ? "" : "s");
      if (!r.rejected.empty()) std::cout << ", skipped " << r.rejected.size() << " invalid row(s)";
      std::cout << '\n';
    }
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace

void setup_patient(CLI::App& app, Context& ctx) {
  auto* patient = app.add_subcommand("patient", "Patients under the station's care");
  patient->require_subcommand(1);

  auto add_opt = std::make_shared<AddOptions>();
  auto* add = patient->add_subcommand("add", "Register a patient (prints the new id)");
  add->add_option("--name", add_opt->in.name, "Full name, with or without diacritics")->required();
  add->add_option("--sex", add_opt->in.sex, "male|female|other")->required();
  add->add_option("--birth", add_opt->in.birth, "Birth date YYYY-MM-DD, or the year YYYY")->required();
  add->add_option("--village", add_opt->in.village, "Village (thôn/bản)")->required();
  add->add_option("--household", add_opt->household, "Household id");
  add->add_option("--category", add_opt->in.categories, "elderly|chronic|covid-home|vulnerable|other (repeatable)")
      ->expected(1)->take_all();
  add->add_option("--condition", add_opt->in.conditions, "A condition, e.g. hypertension (repeatable)")
      ->expected(1)->take_all();
  add->add_option("--phone", add_opt->in.phone, "Phone");
  add->add_option("--national-id", add_opt->in.national_id, "National id (CCCD)");
  add->footer(
      "Example:\n  station-cli patient add --name \"Nguyễn Văn An\" --sex male --birth 1948-03-02 "
      "--village \"Bản Mới\" --category elderly --category chronic --condition hypertension");
  on_run(add, ctx, [add_opt](Context& c) { return run_add(c, *add_opt); });

  auto list_opt = std::make_shared<ListOptions>();
  auto* list = patient->add_subcommand("list", "List patients (every match unless --limit)");
  list->add_option("--search", list_opt->q.search, "Words of the name or village; diacritics optional");
  list->add_option("--village", list_opt->q.village, "Only this village");
  list->add_option("--category", list_opt->q.category, "Only this category");
  list->add_option("--status", list_opt->q.status, "Only this status");
  list->add_flag("--overdue", list_opt->q.overdue_only, "Only patients overdue for a visit");
  list->add_option("--limit", list_opt->q.limit, "At most N patients")->check(at_least(1));
  list->add_option("--covid-days", list_opt->covid_days, "covid-home overdue after N days (default 1)")
      ->check(at_least(1));
  list->add_option("--overdue-days", list_opt->other_days, "Others overdue after N days (default 30)")
      ->check(at_least(1));
  list->footer("Example:\n  station-cli patient list --search \"nguyen van an\"\n  station-cli patient list --overdue");
  on_run(list, ctx, [list_opt](Context& c) { return run_list(c, *list_opt); });

  auto show_id = std::make_shared<std::string>();
  auto* show = patient->add_subcommand("show", "A patient with visits, dispensings, next refills and waste");
  show->add_option("ID", *show_id, "Patient id (or its first characters)")->required();
  show->footer("Example:\n  station-cli patient show 3f2a9c1e");
  on_run(show, ctx, [show_id](Context& c) { return run_show(c, *show_id); });

  auto up = std::make_shared<UpdateOptions>();
  auto* update = patient->add_subcommand("update", "Change a patient's details or status");
  update->add_option("ID", up->id, "Patient id (or its first characters)")->required();
  update->add_option("--name", up->name, "Full name");
  update->add_option("--sex", up->sex, "male|female|other");
  update->add_option("--birth", up->birth, "YYYY-MM-DD or YYYY");
  update->add_option("--village", up->village, "Village");
  update->add_option("--household", up->household, "Household id (\"\" to clear)");
  update->add_option("--phone", up->phone, "Phone");
  update->add_option("--national-id", up->national_id, "National id");
  update->add_option("--status", up->status, "active|recovered|referred|moved|deceased");
  update->add_option("--add-category", up->add_category, "Add a category (repeatable)")->expected(1)->take_all();
  update->add_option("--remove-category", up->remove_category, "Remove a category (repeatable)")
      ->expected(1)->take_all();
  update->add_option("--add-condition", up->add_condition, "Add a condition (repeatable)")->expected(1)->take_all();
  update->add_option("--remove-condition", up->remove_condition, "Remove a condition (repeatable)")
      ->expected(1)->take_all();
  update->footer("Example:\n  station-cli patient update 3f2a9c1e --status recovered\n"
                 "  station-cli patient update 3f2a9c1e --add-condition diabetes");
  on_run(update, ctx, [up, update](Context& c) { return run_update(c, *up, update); });

  auto imp = std::make_shared<ImportOptions>();
  auto* import = patient->add_subcommand("import", "Import patients from a CSV file (a spreadsheet saved as CSV)");
  import->add_option("FILE", imp->file, "CSV file with a header row")->required();
  import->add_flag("--skip-invalid", imp->skip_invalid, "Import the valid rows and list the others");
  import->footer(
      "The header names the columns like patient add's options:\n"
      "  name,sex,birth,village,household,category,condition,phone,national-id\n"
      "Several categories or conditions in one cell are separated by ';'. Nothing is imported unless every row\n"
      "is valid, or --skip-invalid is given.\n"
      "Example:\n  station-cli patient import danh-sach.csv");
  on_run(import, ctx, [imp](Context& c) { return run_import(c, *imp); });
}

}  // namespace tramsync::cli
