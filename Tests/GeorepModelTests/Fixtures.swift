import Foundation
import GeorepModel

/// Shared test inputs: the example configuration of `schemas/examples` and paths in the repository.
enum Fixtures {
    /// The repository root, found from this file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `schemas/examples`.
    static let examplesDirectory = repositoryRoot.appendingPathComponent("schemas/examples")

    /// The example configuration `schemas/examples/georep.yaml` (`docs/configuration.md#the-file`).
    static let specConfig: GeorepConfig = {
        do {
            return try GeorepConfig.load(path: examplesDirectory.appendingPathComponent("georep.yaml").path)
        } catch {
            fatalError("the example configuration does not load: \(error)")
        }
    }()

    /// A table mixing every scalar type and every CRDT type under `lww`, with a composite key.
    static let ledger = TableSchema(
        name: "ledger", key: ["region_code", "n"], merge: .lww,
        columns: [
            ColumnSchema(name: "region_code", type: .text), ColumnSchema(name: "n", type: .integer),
            ColumnSchema(name: "label", type: .text), ColumnSchema(name: "weight", type: .real),
            ColumnSchema(name: "flag", type: .boolean), ColumnSchema(name: "meta", type: .json),
            ColumnSchema(name: "tags", type: .orset), ColumnSchema(name: "seen", type: .gset),
            ColumnSchema(name: "hits", type: .counter),
        ])

    /// The example configuration plus `ledger`.
    static let config: GeorepConfig = {
        var config = specConfig
        config.tables.append(ledger)
        return config
    }()

    /// A table of `config` by name.
    static func table(_ name: String) -> TableSchema {
        guard let table = config.table(named: name) else { fatalError("no table \(name)") }
        return table
    }

    /// A stamp at `millis` ms (logical 0) from `origin`.
    static func stamp(_ millis: UInt64, _ origin: String = "us-east-1", logical: UInt16 = 0) -> Stamp {
        Stamp(hlc: HLCTimestamp(millis: millis, logical: logical), origin: origin)
    }
}
