import Foundation
import GeorepModel
import Hummingbird

/// Operator hooks of a node, under `/v1/admin` (not part of the client API):
///
/// | request | does |
/// |---|---|
/// | `GET /v1/admin` | the state below |
/// | `POST /v1/admin/applier/pause?seconds=N` | stops applying for N seconds (no `seconds`: until resumed) |
/// | `POST /v1/admin/applier/resume` | applies again |
/// | `POST /v1/admin/control/pause` | stops reading `georep.control`, as if cut off from its cluster |
/// | `POST /v1/admin/control/resume` | reads it again (and applies what it missed) |
///
/// Each answers the node's state as `{"applier_paused": ..., "control_paused": ...}`.
struct AdminController: Sendable {
    let node: RegionNode

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/admin") { _, _ in self.adminState() }
        router.post("/v1/admin/applier/pause") { request, _ in
            var duration: Duration?
            if let text = request.uri.queryParameters.get("seconds") {
                guard let seconds = Double(text), seconds > 0, seconds <= 86_400 else {
                    throw APIError(.badRequest, "seconds must be a number of seconds in (0, 86400], not '\(text)'")
                }
                duration = .milliseconds(Int64(seconds * 1000))
            }
            node.engine.pause.pause(for: duration)
            node.logger.notice("applier paused by an operator", metadata: ["seconds": "\(duration.map { "\($0)" } ?? "until resumed")"])
            return self.adminState()
        }
        router.post("/v1/admin/applier/resume") { _, _ in
            node.engine.pause.resume()
            node.logger.notice("applier resumed by an operator")
            return self.adminState()
        }
        router.post("/v1/admin/control/pause") { _, _ in
            node.controlReader.pause()
            node.logger.notice("control topic reader paused by an operator")
            return self.adminState()
        }
        router.post("/v1/admin/control/resume") { _, _ in
            node.controlReader.resume()
            node.logger.notice("control topic reader resumed by an operator")
            return self.adminState()
        }
    }

    private func adminState() -> Response {
        jsonResponse(["region": .string(node.region), "applier_paused": .bool(node.engine.pause.isPaused), "control_paused": .bool(node.controlReader.isPaused)])
    }
}
