import Foundation
import GeorepModel
import GeorepStore
import GRDB

/// Test inputs for stores: configurations and temporary SQLite files.
enum StoreFixtures {
    /// The SPEC §7 tables plus `ledger`, which mixes every column type under `lww` with a composite key.
    static let yaml = """
        topology: active-active
        conflict_window_ms: 1000
        regions:
          - {id: us-east-1, kafka: "127.0.0.1:9092", http: "127.0.0.1:8081", store: "sqlite:us.sqlite"}
          - {id: eu-west-1, kafka: "127.0.0.1:9092", http: "127.0.0.1:8082", store: "sqlite:eu.sqlite"}
          - {id: ap-southeast-1, kafka: "127.0.0.1:9092", http: "127.0.0.1:8083", store: "sqlite:ap.sqlite"}
        tables:
          user_profile:
            key: [user_id]
            merge: lww
            columns: {user_id: integer, display_name: text, bio: text}
          cart:
            key: [cart_id]
            merge: lww-columns
            columns: {cart_id: text, items: gset, saved: orset, views: counter, note: text}
          user_pii:
            key: [user_id]
            merge: pinned
            columns: {user_id: integer, home_region: text, email: text}
          ledger:
            key: [region_code, n]
            merge: lww
            columns: {region_code: text, n: integer, label: text, weight: real, flag: boolean, meta: json, tags: orset, seen: gset, hits: counter}
        """

    static let config: GeorepConfig = {
        do {
            return try GeorepConfig.parse(yaml: yaml)
        } catch {
            fatalError("the test configuration does not parse: \(error)")
        }
    }()

    static func table(_ name: String) -> TableSchema {
        guard let table = config.table(named: name) else { fatalError("no table \(name)") }
        return table
    }
}

/// A temporary directory removed when the test ends.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("georep-store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Raw SQL on a store's file, as a user or an operator would run it.
func withRawDatabase<T>(_ path: String, _ body: (Database) throws -> T) throws -> T {
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try queue.writeWithoutTransaction(body)
}
