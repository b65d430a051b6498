import Foundation
import NIOSSL
public import PostgresNIO

/// A `postgres://` or `postgresql://` URL read into a connection configuration.
///
/// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=MODE`, as libpq reads it: the port
/// defaults to 5432, the database to the user name; `sslmode` is `disable`, `prefer` (the
/// default), `require` (both without certificate checks, like libpq) or `verify-full`.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// Role to connect as.
    public var username: String
    /// Its password, if any (never printed).
    public var password: String?
    /// Database name.
    public var database: String
    /// The `sslmode` query parameter.
    public var sslMode: String

    /// Reads a URL; the error names what is wrong without echoing the password.
    public init(url text: String) throws(StoreError) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
              let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw .unsupportedStore("a PostgreSQL store needs a URL postgres://USER:PASSWORD@HOST:PORT/DATABASE, not \(Self.redacted(text).debugDescription)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw .unsupportedStore("the PostgreSQL URL for host \(host) names no user (postgres://USER:PASSWORD@\(host)/DATABASE)")
        }
        self.host = host
        port = components.port ?? 5432
        username = user
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : path
        sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw .unsupportedStore("sslmode \(sslMode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
    }

    /// `text` with whatever stands between `://` and `@` left out, as it may hold a password.
    private static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        return text[..<scheme.upperBound] + "…" + text[at...]
    }

    /// The URL without its password.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(sslMode)"
    }

    /// The URL with its password, as a store opens it (keep it out of logs).
    public var url: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.host = host
        components.port = port
        components.user = username
        components.password = password
        components.path = "/" + database
        components.queryItems = [URLQueryItem(name: "sslmode", value: sslMode)]
        return components.string ?? description
    }

    /// The same server and role with another database (tests and tools create databases).
    public func with(database: String) -> PostgresLocation {
        var copy = self
        copy.database = database
        return copy
    }

    /// The postgres-nio client (connection pool) configuration.
    public var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS = switch tlsMode {
        case .disable: .disable
        case let .prefer(configuration): .prefer(configuration)
        case let .require(configuration): .require(configuration)
        }
        return PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// The configuration of a single connection (schema migrations, tools).
    public func makeConnectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS = switch tlsMode {
        case .disable: .disable
        case let .prefer(configuration): .prefer(try NIOSSLContext(configuration: configuration))
        case let .require(configuration): .require(try NIOSSLContext(configuration: configuration))
        }
        return PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    private enum TLSMode {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }

    /// `sslmode` as libpq reads it: `prefer` and `require` do not check the certificate.
    private var tlsMode: TLSMode {
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.certificateVerification = .none
        return switch sslMode {
        case "disable": .disable
        case "require": .require(unverified)
        case "verify-ca", "verify-full": .require(.makeClientConfiguration())
        default: .prefer(unverified)
        }
    }
}
