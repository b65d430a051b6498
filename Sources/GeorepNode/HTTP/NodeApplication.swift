import GeorepModel
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// The HTTP API of a node, documented in `docs/http-api.md`: one router with the rows,
/// status and (when enabled) admin controllers, JSON errors everywhere.
extension RegionNode {
    func makeHTTPServer() -> some Service {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(JSONErrorMiddleware())
        let forwarder = Forwarder(region: region, peers: peers)
        StatusController(node: self).addRoutes(to: router)
        RowsController(node: self, forwarder: forwarder).addRoutes(to: router)
        if settings.servesAdminEndpoints { AdminController(node: self).addRoutes(to: router) }
        let address = settings.listenAddress ?? config.region(id: region)?.http ?? HostPort(host: "127.0.0.1", port: 0)
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: Int(address.port)), serverName: "georep/\(region)"),
            onServerRunning: { channel in
                self.didStartListening(HostPort(host: address.host, port: UInt16(channel.localAddress?.port ?? Int(address.port))))
            },
            logger: logger)
    }
}

extension Router<BasicRequestContext> {
    /// Answers the usual methods a path does not serve with 405 and its `Allow` header (RFC 9110
    /// §15.5.6) instead of the router's 404.
    func refuseOtherMethods(on path: String, allowed: [HTTPRequest.Method]) {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for method in [HTTPRequest.Method.get, .put, .post, .delete, .patch] where !allowed.contains(method) {
            on(RouterPath(path), method: method) { request, _ -> Response in
                throw APIError(.methodNotAllowed, "\(request.method) is not served at \(request.uri.path); it takes \(allow)", allow: allow)
            }
        }
    }
}

/// A JSON response.
func jsonResponse(_ json: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = HTTPFields()) -> Response {
    jsonResponse(Array(json.jsonText.utf8), status: status, headers: headers)
}

/// A response whose body is `json`, already encoded.
func jsonResponse(_ json: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = HTTPFields()) -> Response {
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
}
