// Numbered schema migrations, applied in order on open. PRAGMA user_version holds
// the number of the last one applied; each runs in its own transaction. Never
// edit a migration that has shipped: add the next one. docs/schema.md describes
// the result.
#pragma once

#include <functional>
#include <vector>

#include "db.h"

namespace tramsync::migrations {

struct Migration {
  int version;
  const char* what;
  std::function<void(db::WriteTxn&)> apply;
};

const std::vector<Migration>& all();

// Applies every migration above the file's version, up to `limit` (0: all).
void apply(db::Db& db, int limit = 0);

}  // namespace tramsync::migrations
