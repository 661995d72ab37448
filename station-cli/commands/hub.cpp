// The station as a hub for its mobile teams: serve (the sync endpoints over
// this file, on the station's Wi-Fi), device add / list / revoke / scope, and
// server add (another server this device may sync with, with its token).
#include <iostream>

#include "cli.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/device_admin.h"
#include "tramsync/sync/serve.h"
#include "tramsync/sync/transport.h"

namespace tramsync::cli {

namespace {

// A station's own file: the hub serves and registers devices of its station.
std::unique_ptr<Store> open_station(Context& c, const char* what, Identity* id_out) {
  auto store = c.open();
  if (!store) return nullptr;
  auto id = store->identity();
  if (!id) {
    c.fail(std::move(id.error()).in(what));
    return nullptr;
  }
  if (id->station_code.empty() || !store->station_by_code(id->station_code)) {
    c.fail(std::string(what) +
           ": this file has no station record yet (a device enrolled a moment ago gets it with its first sync): "
           "run `station-cli sync` first");
    return nullptr;
  }
  *id_out = *id;
  return store;
}

int run_serve(Context& c, sync::ServeParams p) {
  p.db_path = c.db_path;
  bool usage = false;
  auto setup = sync::serve_setup(p, &usage);
  if (!setup) {
    c.fail(setup.error());
    return usage ? kExitUsage : kExitFailed;
  }
  Identity id;
  {
    auto store = open_station(c, "serve", &id);
    if (!store) return kExitFailed;
  }
  sync::RequestLogger log;
  auto st = sync::serve_until_signal(*setup, log, [&](const sync::Listening& l) {
    if (c.as_json) {
      // One line, so a script can read it before the server stops.
      json line = {{"listening", l.url}, {"port", l.port}, {"station", id.station_code}};
      if (l.tls) line["fingerprint"] = setup->fingerprint;
      std::cout << line.dump() << std::endl;
    } else {
      if (l.tls) std::cout << "fingerprint SHA256 " << setup->fingerprint << '\n';
      std::cout << "station " << id.station_code << " serving its mobile devices on " << l.url << std::endl;
    }
  });
  if (!st) return c.fail(st.error());
  return kExitOk;
}

struct ScopeOptions {
  std::string id;
  std::vector<std::string> villages;
  bool whole = false;
};

}  // namespace

void setup_hub(CLI::App& app, Context& ctx) {
  {
    auto p = std::make_shared<sync::ServeParams>();
    auto* cmd = app.add_subcommand("serve", "Serve this station's file to its mobile devices (HTTPS) until stopped");
    cmd->add_option("--listen", p->listen, "HOST:PORT to listen on, e.g. 0.0.0.0:8443 (port 0 picks a free one)")
        ->type_name("HOST:PORT")
        ->required();
    auto* self = cmd->add_option("--self-signed", p->self_signed_dir,
                                 "Use (making it the first time) a self-signed certificate in DIR; devices pin "
                                 "the fingerprint printed")
                     ->type_name("DIR");
    auto* cert = cmd->add_option("--cert", p->cert, "PEM certificate for HTTPS")->type_name("FILE");
    auto* key = cmd->add_option("--key", p->key, "PEM private key of --cert")->type_name("FILE");
    auto* insecure = cmd->add_flag("--insecure-http", p->insecure_http, "Plain HTTP on loopback, for tests only");
    cert->needs(key);
    key->needs(cert);
    self->excludes(cert)->excludes(key);
    insecure->excludes(cert)->excludes(key)->excludes(self);
    cmd->add_option("--threads", p->threads, "Worker threads (default: 8 per CPU, at least 64)")
        ->check(CLI::Range(1u, 256u));
    cmd->footer(
        "Mobile devices enrolled here (`station-cli device add`) sync with this file; its own `station-cli sync`\n"
        "with the centre relays their changes upward (their origin kept) and brings the centre's down.\n"
        "Example:\n"
        "  station-cli --db station.db serve --listen 0.0.0.0:8443 --self-signed tls/");
    on_run(cmd, ctx, [p](Context& c) { return run_serve(c, *p); });
  }
  {
    auto* device = app.add_subcommand("device", "Mobile devices that sync with this station (its hub)");
    device->require_subcommand(1);

    auto o = std::make_shared<sync::DeviceAddParams>();
    o->role = kRoleMobile;
    o->program = "station-cli";
    auto* add = device->add_subcommand("add", "Make a one-time enrollment code for a mobile device");
    add->add_option("--name", o->name, "A name for the device, e.g. \"team 2 tablet\"");
    add->add_option("--villages", o->villages,
                    "It carries only these villages' households and patients (comma-separated; default: the whole "
                    "station). It may still register a patient anywhere in the station.")
        ->delimiter(',');
    add->add_option("--role", o->role, "mobile (default) or station (another laptop of this station)")
        ->check(CLI::IsMember({std::string(kRoleMobile), std::string(kRoleStation)}));
    add->add_option("--expires", o->hours, "Hours the code stays valid (default 72, at most 720)")
        ->check(CLI::Range(int64_t{1}, sync::kMaxCodeHours));
    add->footer("Example:\n  station-cli device add --name \"team 2\" --villages \"Bản Hon,Bản Khe\"");
    on_run(add, ctx, [o](Context& c) {
      Identity id;
      auto store = open_station(c, "device add", &id);
      if (!store) return kExitFailed;
      sync::DeviceAddParams p = *o;
      p.station = id.station_code;
      return c.show(sync::device_add(*store, p));
    });

    auto all = std::make_shared<bool>(false);
    auto* list = device->add_subcommand("list", "Devices registered here (and those the centre registered)");
    list->add_flag("--all", *all, "Revoked devices too (--json always lists them)");
    on_run(list, ctx, [all](Context& c) {
      auto store = c.open();
      if (!store) return kExitFailed;
      return c.show(sync::device_list(*store, "", *all, "station-cli"));
    });

    auto id = std::make_shared<std::string>();
    auto* revoke = device->add_subcommand("revoke", "Revoke a device (a lost tablet): here at once, at the centre "
                                                    "after the next sync");
    revoke->add_option("ID", *id, "The device's id, or its first 4 or more characters")->required();
    on_run(revoke, ctx, [id](Context& c) {
      auto store = c.open();
      if (!store) return kExitFailed;
      return c.show(sync::device_revoke(*store, *id));
    });

    auto so = std::make_shared<ScopeOptions>();
    auto* scope = device->add_subcommand("scope", "Narrow or widen the villages a mobile device carries");
    scope->add_option("ID", so->id, "The device's id, or its first 4 or more characters")->required();
    auto* vill = scope->add_option("--villages", so->villages, "Its villages, comma-separated")->delimiter(',');
    auto* whole = scope->add_flag("--all-villages", so->whole, "The whole station");
    vill->excludes(whole);
    scope->footer(
        "Takes effect on the device's next sync, without enrolling again: widened, it receives the added villages'\n"
        "records; narrowed, it stops receiving the others (what it holds of them stays, no longer updated).\n"
        "Example:\n  station-cli device scope 3f2a9c1e --villages \"Bản Hon\"");
    on_run(scope, ctx, [so](Context& c) {
      if (so->villages.empty() && !so->whole) {
        c.fail("device scope: give --villages V1,V2 or --all-villages");
        return kExitUsage;
      }
      auto store = c.open();
      if (!store) return kExitFailed;
      return c.show(sync::device_scope(*store, so->id, so->villages));
    });
  }
  {
    auto* server = app.add_subcommand("server", "Servers this device syncs with");
    server->require_subcommand(1);
    auto p = std::make_shared<sync::AddServerParams>();
    auto* add = server->add_subcommand(
        "add", "Sync also with another server (the centre, or the station's hub) using this device's enrollment");
    add->add_option("--server", p->server_url, "The server's address, https://HOST:PORT")->required();
    auto* ca = add->add_option("--ca", p->ca_file, "Trust the server's certificate if this CA file (PEM) signed it");
    auto* pin = add->add_option("--pin", p->pin, "Trust exactly the certificate with this SHA-256 fingerprint");
    ca->excludes(pin);
    add->footer(
        "A device enrolled at its station hub is known at the centre once the hub has synced (and the other way\n"
        "round), so no new code is needed. Then `station-cli sync --server URL` picks it.\n"
        "Example:\n  station-cli server add --server https://centre.example:8443 --pin AB:CD:...:EF");
    on_run(add, ctx, [p](Context& c) {
      sync::HttpsOptions o;
      o.url = p->server_url;
      o.pin = p->pin;
      o.ca_file = p->ca_file;
      auto transport = sync::make_https_transport(o);
      if (!transport) return c.fail(std::move(transport.error()).in("server add"));
      auto store = c.open();
      if (!store) return kExitFailed;
      auto peer = sync::add_server(*store, **transport, *p);
      if (!peer) return c.fail(peer.error());
      if (c.as_json) {
        c.print_json({{"server", peer->url}, {"server_node_id", peer->id}});
      } else {
        std::cout << "This device now syncs with " << peer->url << " too: `station-cli sync --server " << peer->url
                  << "`.\n";
      }
      return kExitOk;
    });
  }
}

}  // namespace tramsync::cli
