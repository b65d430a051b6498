import AsyncHTTPClient
import Foundation
public import GeorepModel
import NIOCore
import NIOHTTP1
import Synchronization

/// A small client of a node's HTTP API, for `georep demo`, `georep lag` and tests.
public final class NodeHTTPClient: Sendable {
    /// One response.
    public struct Reply: Sendable {
        /// The HTTP status code.
        public var status: Int
        /// The body, parsed when it is JSON.
        public var json: JSONValue?
        /// The raw body.
        public var body: [UInt8]
        /// Response headers, names lowercased.
        public var headers: [String: String]

        /// The `georep-token` response header.
        public var token: String? { headers[GeorepHTTPHeader.token] }
        /// The `georep-served-by` response header.
        public var servedBy: String? { headers[GeorepHTTPHeader.servedBy] }
        /// The `error` member of a JSON error body.
        public var error: String? { json?.objectValue?["error"]?.stringValue }
    }

    private let client: HTTPClient
    private let timeout: Duration

    /// How long a connection may take to open. A node that is down refuses at once, but the
    /// client's pool keeps trying until this passes: a forward to it fails after this long.
    static let connectTimeout = Duration.seconds(2)

    /// Makes a client; ``shutdown()`` it after use.
    public init(timeout: Duration = .seconds(30)) {
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        let connect = min(timeout, Self.connectTimeout)
        configuration.timeout.connect = .nanoseconds(connect.nanoseconds)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Sends `method` to `http://address/path` with an optional JSON body and headers.
    public func send(
        _ method: String, _ address: HostPort, _ path: String, json: JSONValue? = nil, headers: [String: String] = [:]
    ) async throws -> Reply {
        try await send(method, address, path, body: json.map(\.jsonBytes), headers: headers)
    }

    /// Sends `method` to `http://address/path` with optional body bytes (sent as JSON) and headers.
    ///
    /// Returns or throws within the time-out even if the connection never answers: the request
    /// races a timer, so a caller never waits on a lost response.
    public func send(
        _ method: String, _ address: HostPort, _ path: String, body: [UInt8]?, headers: [String: String] = [:]
    ) async throws -> Reply {
        let limit = timeout + .seconds(1)
        let racers = RacingTasks()
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Reply, any Error>, Never>) in
            let finish = FirstResult(continuation)
            racers.add(Task {
                do {
                    finish.resume(.success(try await self.execute(method, address, path, body: body, headers: headers)))
                } catch {
                    finish.resume(.failure(error))
                }
            })
            racers.add(Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                finish.resume(.failure(NodeHTTPTimeout(address: address, path: path, limit: limit)))
            })
        }
        // The loser stops: a finished request cancels its timer, a time-out its request.
        racers.cancelAll()
        return try result.get()
    }

    private func execute(
        _ method: String, _ address: HostPort, _ path: String, body: [UInt8]?, headers: [String: String]
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if !request.headers.contains(name: "content-type") { request.headers.add(name: "content-type", value: "application/json") }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        let bytes = Array(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), json: JSONValue(parsing: bytes), body: bytes, headers: fields)
    }

    /// The path of a row: `/v1/tables/{table}/rows/{key}`, the key percent-encoded.
    public static func rowPath(_ table: String, _ key: String, _ suffix: String = "") -> String {
        let encoded = key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? key
        return "/v1/tables/\(table)/rows/\(encoded)\(suffix)"
    }

    /// Closes the client's connections.
    public func shutdown() async throws {
        try await client.shutdown()
    }
}

/// A node did not answer within the client's time-out.
public struct NodeHTTPTimeout: Error, CustomStringConvertible {
    /// The node.
    public var address: HostPort
    /// The request's path.
    public var path: String
    /// How long the client waited.
    public var limit: Duration

    /// What did not answer, and how long it was waited for.
    public var description: String { "http://\(address)\(path) did not answer within \(limit)" }
}

/// The tasks of a race, cancelled together once it is decided.
final class RacingTasks: Sendable {
    private let tasks = Mutex<[Task<Void, Never>]>([])

    func add(_ task: Task<Void, Never>) { tasks.withLock { $0.append(task) } }

    func cancelAll() { tasks.withLock { $0 }.forEach { $0.cancel() } }
}

/// Resumes a continuation with the first result it is given; later ones are dropped (a race
/// between an operation and its time-out).
public final class FirstResult<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    /// Wraps `continuation`.
    public init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = Mutex(continuation)
    }

    /// Resumes the continuation with `value` if nothing resumed it yet.
    public func resume(_ value: Value) {
        continuation.withLock { pending in
            defer { pending = nil }
            return pending
        }?.resume(returning: value)
    }
}
