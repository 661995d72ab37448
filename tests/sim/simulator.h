// The deterministic simulation of a district (tests/sim/README.md): the centre,
// two or three stations, each with its laptop serving as the station's hub and
// mobile tablets (some narrowed to villages, some enrolled at the centre), all
// in one process on the real Store, SyncService and sync client, over a link
// that drops, duplicates, delays and replays requests and partitions nodes,
// with clocks that drift, jump back and run days ahead. Everything random comes
// from one seed; run_seed() with the same seed gives the same digest.
//
// After the random phase the network heals, everyone syncs until quiet, and
// the checks run: no lost write, no duplicate, convergence, stock arithmetic,
// a conflict row for every concurrent edit, nothing outside a device's scope.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace tramsync::sim {

// A fault the simulator plants on purpose, to show that the checks catch it
// (they must not pass vacuously).
enum class Plant {
  kNone,
  // A link that drops the last change of a push and still answers that the
  // server acknowledged all of it.
  kDropAckedChange,
  // After the final sync, a visit row deleted from one full-scope device's
  // file behind its store's back.
  kDeleteRow,
  // After the final sync, one lot's stock movement quantity changed in the
  // derived stock table only.
  kCorruptStockBalance,
};

struct Config {
  uint64_t seed = 1;
  int steps = 0;                  // 0: chosen by the seed (see simulator.cpp, kMinSteps..kMaxSteps)
  std::ostream* trace = nullptr;  // every step, fault and sync, when set
  Plant plant = Plant::kNone;
  std::string work_dir;           // where the nodes' files go ("": /dev/shm or the temp directory)
  std::string keep_dir;           // when set, the nodes' files are copied here at the end (to inspect them)
};

struct Stats {
  int stations = 0, nodes = 0, steps = 0;
  int64_t writes = 0;           // Store calls that returned success (acknowledged locally)
  int64_t changes = 0;          // change-log rows those writes made
  int64_t refused_writes = 0;   // Store calls the store refused (validation): not writes
  int64_t syncs = 0, failed_syncs = 0, requests = 0;
  int64_t faults = 0;           // link faults injected (drops, duplicates, delays, replays, partitioned calls)
  int64_t quarantined = 0;      // changes a server refused and told the sender about
  int64_t concurrent_pairs = 0; // concurrent edits of one field checked for a conflict row
  int64_t concurrent_skipped = 0;  // concurrent edits of a field where two writes hold one value (not checked)
  int64_t conflicts = 0;        // conflict rows at the centre
  int64_t heal_rounds = 0;
  // Records a narrowed tablet lacks or holds otherwise than the centre because
  // their patient moved village (protocol.md known gap 20): not failures, counted.
  int64_t moved_out_of_date = 0;
  int64_t held_records = 0;  // records with a change held in some quarantine (not compared)
  int64_t clock_jumps = 0, scope_changes = 0;
};

struct Outcome {
  bool ok = true;
  std::vector<std::string> failures;  // each: the check that failed and the offending record
  std::string digest;                 // SHA-256 over every node's records and logs
  Stats stats;
};

Outcome run_seed(const Config& config);

std::string to_string(Plant p);

}  // namespace tramsync::sim
