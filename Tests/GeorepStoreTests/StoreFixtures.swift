import Foundation
import GeorepModel
import GeorepStore
import GRDB

/// Test inputs for stores: configurations and temporary SQLite files.
enum StoreFixtures {
    /// The repository root, found from this file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `ledger`, which mixes every column type under `lww` with a composite key.
    static let ledgerYAML = """
          ledger:
            key: [region_code, n]
            merge: lww
            columns: {region_code: text, n: integer, label: text, weight: real, flag: boolean, meta: json, tags: orset, seen: gset, hits: counter}

        """

    /// The example configuration `schemas/examples/georep.yaml` (`docs/configuration.md#the-file`;
    /// its last section is `tables`) plus `ledger`.
    static let config: GeorepConfig = {
        do {
            let example = try String(contentsOf: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml"), encoding: .utf8)
            return try GeorepConfig.parse(yaml: example + ledgerYAML)
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
