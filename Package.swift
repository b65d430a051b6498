// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode plus the upcoming
/// features we want everywhere.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "georep",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "georep", targets: ["georep"]),
        .library(name: "GeorepLog", targets: ["GeorepLog"]),
        .library(name: "GeorepKafka", targets: ["GeorepKafka"]),
        .library(name: "GeorepModel", targets: ["GeorepModel"]),
        .library(name: "GeorepStore", targets: ["GeorepStore"]),
        .library(name: "GeorepEngine", targets: ["GeorepEngine"]),
        .library(name: "GeorepNode", targets: ["GeorepNode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // Without its default swift-configuration trait, which georep does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // librdkafka from Debian's librdkafka-dev, found through pkg-config.
        .systemLibrary(
            name: "CRDKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Places in a partitioned log (topic partitions, positions): the one vocabulary of the
        // Kafka layer, the model, the stores and the engine.
        .target(name: "GeorepLog", swiftSettings: swiftSettings),
        // The Kafka layer: the only module that touches librdkafka's C types.
        .target(
            name: "GeorepKafka",
            dependencies: [
                "CRDKafka",
                "GeorepLog",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Pure values: HLC, change events and their codec, merge rules, configuration.
        .target(
            name: "GeorepModel",
            dependencies: [
                "GeorepLog",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Stores: apply a batch of events and their source offsets in one transaction, in
        // SQLite (embedded) or PostgreSQL (production).
        .target(
            name: "GeorepStore",
            dependencies: [
                "GeorepModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The replication engine: applier, writer, dead letters, offsets.
        .target(
            name: "GeorepEngine",
            dependencies: [
                "GeorepKafka",
                "GeorepModel",
                "GeorepStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A region node: HTTP API, applier, writer and lag sampler as one ServiceGroup.
        .target(
            name: "GeorepNode",
            dependencies: [
                "GeorepKafka",
                "GeorepModel",
                "GeorepStore",
                "GeorepEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `georep torture`: the fault harness (processes, clients, nemesis, checker).
        .target(
            name: "GeorepTorture",
            dependencies: [
                "GeorepKafka",
                "GeorepModel",
                "GeorepEngine",
                "GeorepNode",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test helpers shared by the test targets: scratch PostgreSQL databases, the built executables.
        .target(
            name: "GeorepTestSupport",
            dependencies: [
                "GeorepStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every `georep` command shares: the common options (log level, logging).
        .target(
            name: "GeorepCommandSupport",
            dependencies: [
                "GeorepKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `georep bench`: the benchmarks and their commands.
        .target(
            name: "GeorepBench",
            dependencies: [
                "GeorepCommandSupport",
                "GeorepKafka",
                "GeorepModel",
                "GeorepStore",
                "GeorepEngine",
                "GeorepNode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `georep bench apply` times plain SQLite and PostgreSQL loops next to the applier.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `georep` command.
        .executableTarget(
            name: "georep",
            dependencies: [
                "GeorepBench",
                "GeorepCommandSupport",
                "GeorepKafka",
                "GeorepModel",
                "GeorepStore",
                "GeorepEngine",
                "GeorepNode",
                "GeorepTorture",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GeorepKafkaTests",
            dependencies: ["GeorepKafka"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GeorepModelTests",
            dependencies: [
                "GeorepModel",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GeorepEngineTests",
            dependencies: [
                "GeorepEngine", "GeorepKafka", "GeorepModel", "GeorepStore", "GeorepTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GeorepNodeTests",
            dependencies: [
                "GeorepNode", "GeorepEngine", "GeorepKafka", "GeorepModel", "GeorepStore", "GeorepTestSupport", "GeorepTorture",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GeorepStoreTests",
            dependencies: [
                "GeorepStore",
                "GeorepModel",
                "GeorepTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
