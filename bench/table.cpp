// tramsync-bench-table: merges the JSON of benchmark runs (bench/common.h's
// Results, one file per program and scale) into one table, as markdown and
// JSON, with the machine and the commit.
//
//   tramsync-bench-table --commit C --mode quick|full --md OUT.md --json OUT.json RUN.json...
//
// A program run at several scales (its details.scale) gives the main table its
// figures at the largest scale, and a scaling table: each figure at every
// scale, with how the cost grew per unit of data from the smallest scale to
// the largest (1.0 = linear; below 1, better than linear).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"

using namespace tramsync::bench;

namespace {

std::string num(double v) {
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 100) {
    // Thousands separated, no decimals.
    long long n = std::llround(v);
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
  }
  std::snprintf(buf, sizeof buf, a >= 10 ? "%.1f" : (a >= 1 ? "%.2f" : "%.3f"), v);
  return buf;
}

std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

struct Run {
  std::string bench;
  double scale = 1;
  json doc;
};

}  // namespace

int main(int argc, char** argv) {
  std::string commit = "unknown", mode = "quick", md_path, json_path;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--commit") {
      commit = value();
    } else if (a == "--mode") {
      mode = value();
    } else if (a == "--md") {
      md_path = value();
    } else if (a == "--json") {
      json_path = value();
    } else if (a.rfind("--", 0) == 0) {
      std::cerr << "usage: tramsync-bench-table [--commit C] [--mode M] [--md FILE] [--json FILE] RUN.json...\n";
      return 2;
    } else {
      inputs.push_back(a);
    }
  }
  std::vector<Run> runs;
  for (const auto& path : inputs) {
    std::ifstream f(path);
    json doc = json::parse(f, nullptr, false);
    if (doc.is_discarded() || !doc.contains("figures")) {
      std::cerr << "tramsync-bench-table: " << path << " is not a benchmark result\n";
      return 1;
    }
    Run r;
    r.bench = doc.value("bench", path);
    r.scale = doc.contains("details") && doc["details"].contains("scale") ? doc["details"]["scale"].get<double>() : 1.0;
    r.doc = std::move(doc);
    runs.push_back(std::move(r));
  }
  if (runs.empty()) {
    std::cerr << "tramsync-bench-table: no results given\n";
    return 1;
  }
  // Per bench: its runs by scale; the main table takes the largest.
  std::map<std::string, std::map<double, const Run*>> by_bench;
  for (const auto& r : runs) by_bench[r.bench][r.scale] = &r;

  std::ostringstream md;
  const json m = runs.front().doc.value("machine", json::object());
  md << "# TramSync benchmarks (" << mode << " mode)\n\n";
  md << "- commit: " << commit << "\n";
  md << "- machine: " << m.value("cpu", std::string("?")) << ", " << m.value("cores", 0) << " cores, "
     << m.value("memory_gib", 0.0) << " GiB; " << m.value("kernel", std::string("?")) << "; "
     << m.value("compiler", std::string("?")) << "; " << m.value("build", std::string("?")) << "; SQLite "
     << m.value("sqlite", std::string("?")) << "\n";
  md << "- each figure: the median of its runs, and the spread (min to max). Ratio: how many times the limit's cost "
        "TramSync pays for the same work (1.0 would be the limit itself).\n\n";

  json merged{{"commit", commit}, {"mode", mode}, {"machine", m}, {"benches", json::array()}};
  std::string group;
  md << "| figure | median | spread | unit | limit | ratio | target | runs |\n";
  md << "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const auto& [bench, scales] : by_bench) {
    const Run* main = scales.rbegin()->second;
    for (const auto& f : main->doc["figures"]) {
      const std::string g = f.value("group", bench);
      if (g != group) {
        group = g;
        md << "| **" << md_escape(g) << "** | | | | | | | |\n";
      }
      const auto runs_n = f.contains("runs") ? f["runs"].size() : 0;
      std::string spread = f.contains("min") ? num(f["min"].get<double>()) + " – " + num(f["max"].get<double>()) : "";
      md << "| " << md_escape(f.value("what", f.value("id", std::string("?")))) << " <br>`" << f.value("id", std::string())
         << "` | **" << num(f.value("median", 0.0)) << "** | " << spread << " | " << f.value("unit", std::string()) << " | "
         << (f.contains("limit") ? num(f["limit"].get<double>()) : "") << " | "
         << (f.contains("ratio") ? num(f["ratio"].get<double>()) + "×" : "") << " | "
         << (f.contains("target") ? num(f["target"].get<double>()) : "") << " | " << runs_n << " |\n";
    }
    json b{{"bench", bench}, {"runs", json::array()}};
    for (const auto& [scale, r] : scales) b["runs"].push_back(r->doc);
    merged["benches"].push_back(b);
  }
  // Scaling: figures present at more than one scale.
  bool any_scaling = false;
  for (const auto& [bench, scales] : by_bench) {
    if (scales.size() < 2) continue;
    if (!any_scaling) {
      md << "\n## Scaling\n\nThe same figures with more data (scale 1 is the size issue 7 names). Growth: how the "
            "figure changed from the smallest scale to the largest, divided by how much the data grew, for figures "
            "that measure a whole job (seconds, bytes, memory); for a rate or a per-action time, the plain ratio "
            "largest/smallest (1.0 = it did not change).\n";
      any_scaling = true;
    }
    md << "\n### " << bench << "\n\n| figure | unit |";
    for (const auto& [scale, r] : scales) md << " scale " << num(scale) << " |";
    md << " growth |\n| --- | --- |";
    for (size_t i = 0; i < scales.size(); ++i) md << " ---: |";
    md << " ---: |\n";
    const Run* first = scales.begin()->second;
    for (const auto& f : first->doc["figures"]) {
      const std::string id = f.value("id", std::string());
      const std::string unit = f.value("unit", std::string());
      md << "| `" << id << "` | " << unit << " |";
      double lo = 0, hi = 0;
      for (const auto& [scale, r] : scales) {
        std::string cell = "";
        for (const auto& g : r->doc["figures"]) {
          if (g.value("id", std::string()) == id) {
            const double v = g.value("median", 0.0);
            cell = num(v);
            if (r == first) lo = v;
            hi = v;
          }
        }
        md << " " << cell << " |";
      }
      const double data_growth = scales.rbegin()->first / scales.begin()->first;
      const bool whole_job = f.contains("whole_job") ? f["whole_job"].get<bool>()
                                                     : (unit == "s" || unit == "bytes" || unit == "MiB");
      std::string growth;
      if (lo > 0 && hi > 0) growth = num(whole_job ? hi / lo / data_growth : hi / lo);
      md << " " << growth << " |\n";
    }
  }
  if (!md_path.empty()) {
    std::ofstream f(md_path);
    f << md.str();
    if (!f) {
      std::cerr << "cannot write " << md_path << "\n";
      return 1;
    }
  } else {
    std::cout << md.str();
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << merged.dump(2) << "\n";
    if (!f) {
      std::cerr << "cannot write " << json_path << "\n";
      return 1;
    }
  }
  return 0;
}
