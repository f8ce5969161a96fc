// The dashboard's static files (web/, bundled at build time into DIR/index.html, app.js,
// app.css) served over HTTP without a token: the API calls they make carry the bearer token.
// Only regular files under the root are answered; a path with "..", ".", an empty segment,
// a backslash or a NUL, or one that resolves (symlinks included) outside the root, is a 404.
// HTML pages carry a Content-Security-Policy: scripts, styles and requests from this server only.
#pragma once

#include <string>

#include "core/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace acs::server {

// The content type of a file name by its extension ("application/octet-stream" otherwise).
std::string ContentTypeOf(const std::string& name);

// The file under `root` that the URL path `path` ("/" is index.html) names, as a canonical
// path; NotFound for anything else (see above), and for paths under /api/.
StatusOr<std::string> ResolveStaticPath(const std::string& root, const std::string& path);

// Registers GET "/" and "/<file>" on `server`, after (so below) every other GET route: it
// must be called last. A miss is answered 404 with an empty body, for the server's error
// handler to fill. `root` must be a directory (InvalidArgument otherwise).
Status ServeStaticFiles(httplib::Server* server, const std::string& root);

// The dashboard's default root for this program (/proc/self/exe): the build tree's web/dist
// beside server/ (build/server/acs-server -> build/web/dist) or a web/ directory next to the
// binary, the first that holds index.html; "" when neither does.
std::string DefaultWebRoot();

}  // namespace acs::server
