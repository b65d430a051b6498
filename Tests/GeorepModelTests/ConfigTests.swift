import GeorepModel
import Testing

@Suite struct ConfigTests {
    static let valid = """
        topology: single-primary
        primary: eu-west-1
        partitions: 12
        hlc_max_offset_ms: 5000
        regions:
          - id: us-east-1
            kafka: 127.0.0.1:9092
            http: 127.0.0.1:8081
            store: sqlite:data/us-east-1.sqlite
          - id: eu-west-1
            kafka: broker-a:9092,broker-b:9092
            http: "[::1]:8082"
            store: postgres://georep@db.example/georep
        tables:
          user_profile:
            key: [user_id]
            merge: lww
            columns: {user_id: integer, display_name: text, bio: text}
          cart:
            key: [cart_id, shop]
            merge: lww-columns
            columns: {cart_id: text, shop: integer, items: gset, saved: orset, views: counter, note: text, extra: json, price: real, gift: boolean}
        """

    @Test("a store location names a PostgreSQL server without its password: it goes into errors and logs")
    func storeLocationHidesPassword() {
        let location = StoreLocation.postgres(url: "postgres://georep:s3cret@db.example:5432/georep?sslmode=require")
        #expect(!location.description.contains("s3cret"))
        #expect(location.description == "postgres://georep:***@db.example:5432/georep?sslmode=require")
        #expect(StoreLocation.postgres(url: "postgresql://georep@db.example/georep").description == "postgresql://georep@db.example/georep")
        #expect(StoreLocation.sqlite(path: "data/a.sqlite").description == "sqlite:data/a.sqlite")
    }

    @Test func parsesEverySection() throws {
        let config = try GeorepConfig.parse(yaml: Self.valid)
        #expect(config.topology == .singlePrimary)
        #expect(config.primary == "eu-west-1")
        #expect(config.partitions == 12)
        #expect(config.hlcMaxOffsetMillis == 5000)
        #expect(config.conflictWindowMillis == GeorepConfig.defaultConflictWindowMillis)
        #expect(config.regions.map(\.id) == ["us-east-1", "eu-west-1"])
        #expect(config.regions[0].store == .sqlite(path: "data/us-east-1.sqlite"))
        #expect(config.regions[1].store == .postgres(url: "postgres://georep@db.example/georep"))
        #expect(config.regions[1].http == HostPort(host: "::1", port: 8082))
        #expect(config.regions[1].kafka == "broker-a:9092,broker-b:9092")
        let cart = try #require(config.table(named: "cart"))
        #expect(cart.key == ["cart_id", "shop"])
        #expect(cart.merge == .lwwColumns)
        #expect(cart.columns.map(\.name) == ["cart_id", "shop", "items", "saved", "views", "note", "extra", "price", "gift"])
        #expect(cart.columns.map(\.type) == [.text, .integer, .gset, .orset, .counter, .text, .json, .real, .boolean])
        #expect(config.tables.map(\.name) == ["user_profile", "cart"])
    }

    @Test func defaultsApplyWhenOptionalSettingsAreAbsent() throws {
        let config = Fixtures.specConfig
        #expect(config.topology == .activeActive)
        #expect(config.primary == nil)
        #expect(config.partitions == 6)
        #expect(config.hlcMaxOffsetMillis == 60_000)
        #expect(config.conflictWindowMillis == 1_000)
        #expect(config.table(named: "user_pii")?.merge == .pinned)
    }

    @Test func controlKafkaNamesTheControlTopicsCluster() throws {
        #expect(Fixtures.specConfig.controlKafka == nil)
        let config = try GeorepConfig.parse(yaml: Self.valid.replacingOccurrences(of: "partitions: 12", with: "partitions: 12\ncontrol_kafka: control-a:9092"))
        #expect(config.controlKafka == "control-a:9092")
        expectFailure(replacing: "partitions: 12", with: "partitions: 12\ncontrol_kafka: ''", line: 4, problem: "control_kafka is empty")
    }

    @Test func kafkaPropertiesReachEveryClientOfTheirCluster() throws {
        let yaml = Self.valid
            .replacingOccurrences(of: "partitions: 12", with: "partitions: 12\nkafka_properties: {security.protocol: SASL_SSL, socket.timeout.ms: 30000}")
            .replacingOccurrences(of: "    store: sqlite:data/us-east-1.sqlite", with: "    store: sqlite:data/us-east-1.sqlite\n    kafka_properties:\n      sasl.username: east\n      socket.timeout.ms: 5000")
        let config = try GeorepConfig.parse(yaml: yaml)
        #expect(config.kafkaProperties == ["security.protocol": "SASL_SSL", "socket.timeout.ms": "30000"])
        #expect(config.regions[0].kafkaProperties == ["sasl.username": "east", "socket.timeout.ms": "5000"])
        #expect(config.kafkaProperties(for: "127.0.0.1:9092") == ["security.protocol": "SASL_SSL", "socket.timeout.ms": "5000", "sasl.username": "east"])
        #expect(config.kafkaProperties(for: "broker-a:9092,broker-b:9092") == ["security.protocol": "SASL_SSL", "socket.timeout.ms": "30000"])
        expectFailure(replacing: "partitions: 12", with: "partitions: 12\nkafka_properties: [a, b]", line: 4, problem: "kafka_properties must be a mapping")
        expectFailure(replacing: "partitions: 12", with: "partitions: 12\nkafka_properties: {sasl.mechanism: [PLAIN]}", line: 4,
                      problem: "sasl.mechanism in kafka_properties must be a single value")
        expectFailure(replacing: "partitions: 12", with: "partitions: 12\nkafka_properties: {auto.offset.reset: latest}", line: 4,
                      problem: "kafka_properties cannot set auto.offset.reset: georep sets it itself")
        // Two regions on one cluster share its clients, so they cannot disagree about a property.
        let shared = Self.valid
            .replacingOccurrences(of: "kafka: broker-a:9092,broker-b:9092", with: "kafka: 127.0.0.1:9092\n    kafka_properties: {client.rack: b}")
            .replacingOccurrences(of: "    store: sqlite:data/us-east-1.sqlite", with: "    store: sqlite:data/us-east-1.sqlite\n    kafka_properties: {client.rack: a}")
        #expect(throws: ConfigError.self) { try GeorepConfig.parse(yaml: shared) }
        do {
            _ = try GeorepConfig.parse(yaml: shared)
        } catch {
            #expect(error.problem == "regions us-east-1 and eu-west-1 share the cluster 127.0.0.1:9092 but set client.rack differently", "\(error)")
            #expect(error.line == 13, "\(error)")
        }
    }

    /// Replaces `old` by `new` in the valid file and expects an error at `line` mentioning `problem`.
    private func expectFailure(replacing old: String, with new: String, line: Int?, problem: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let yaml = Self.valid.replacingOccurrences(of: old, with: new)
        #expect(yaml != Self.valid, "the replacement must change the file", sourceLocation: sourceLocation)
        do {
            _ = try GeorepConfig.parse(yaml: yaml, file: "georep.yaml")
            Issue.record("expected the file to be refused (\(problem))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.file == "georep.yaml", sourceLocation: sourceLocation)
            #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
            #expect(error.problem.contains(problem), "\(error)", sourceLocation: sourceLocation)
            if let line { #expect(error.description.hasPrefix("georep.yaml:\(line): "), sourceLocation: sourceLocation) }
        }
    }

    @Test func refusesBadFilesNamingLineAndProblem() {
        expectFailure(replacing: "merge: lww\n", with: "merge: last-writer\n", line: 17, problem: "unknown merge rule 'last-writer'")
        expectFailure(replacing: "bio: text", with: "bio: varchar", line: 18, problem: "unknown type 'varchar' for column bio")
        let longName = String(repeating: "b", count: 64)
        expectFailure(replacing: "bio: text", with: "\(longName): text", line: 15, problem: "column name '\(longName)' of table user_profile is longer than 63")
        expectFailure(replacing: "key: [user_id]", with: "key: [id]", line: 16, problem: "key column id of table user_profile is not declared")
        expectFailure(replacing: "key: [cart_id, shop]", with: "key: [cart_id, items]", line: 20, problem: "key column items of table cart is gset")
        expectFailure(replacing: "primary: eu-west-1", with: "primary: mars-1", line: 2, problem: "primary 'mars-1' is not one of the regions")
        expectFailure(replacing: "primary: eu-west-1\n", with: "", line: 1, problem: "single-primary needs a primary")
        expectFailure(replacing: "id: eu-west-1", with: "id: us-east-1", line: 10, problem: "declared twice")
        expectFailure(replacing: "partitions: 12", with: "partitions: 0", line: 3, problem: "partitions must be an integer")
        expectFailure(replacing: "partitions: 12", with: "partition: 12", line: 3, problem: "unknown key 'partition' in the top level")
        expectFailure(replacing: "    store: sqlite:data/us-east-1.sqlite", with: "    store: mysql://x", line: 9, problem: "store of region us-east-1 must be sqlite:PATH or a postgres:// URL")
        expectFailure(replacing: "http: 127.0.0.1:8081", with: "http: localhost", line: 8, problem: "http of region us-east-1 must be host:port")
        expectFailure(replacing: #"http: "[::1]:8082""#, with: "http: 127.0.0.1:8081", line: 12,
                      problem: "http 127.0.0.1:8081 of region eu-west-1 is also region us-east-1's")
        expectFailure(replacing: "topology: single-primary", with: "topology: ring", line: 1, problem: "unknown topology 'ring'")
        expectFailure(replacing: "    merge: lww-columns\n", with: "    merge: lww-columns\n    ttl: 5\n", line: 22, problem: "unknown key 'ttl' in table cart")
        expectFailure(replacing: "user_profile:", with: "georep_offsets:", line: 15, problem: "table name 'georep_offsets'")
        expectFailure(replacing: "bio: text", with: "bio: text, bio: json", line: 18, problem: "duplicate key 'bio'")
    }

    @Test func refusesEmptyRegionsAndTables() {
        let noRegions = "topology: active-active\nregions: []\ntables: {t: {key: [k], merge: lww, columns: {k: integer}}}\n"
        #expect(throws: ConfigError(file: nil, line: 2, problem: "regions is empty; declare at least one region")) {
            try GeorepConfig.parse(yaml: noRegions)
        }
        let missingTables = "topology: active-active\nregions:\n  - {id: a, kafka: k:1, http: h:1, store: 'sqlite:x'}\n"
        #expect(throws: ConfigError(file: nil, line: 1, problem: "the top level is missing 'tables'")) {
            try GeorepConfig.parse(yaml: missingTables)
        }
    }

    @Test func refusesAPinnedTableWithoutHomeRegion() {
        let yaml = """
            topology: active-active
            regions:
              - {id: a, kafka: "k:1", http: "h:1", store: "sqlite:x"}
            tables:
              secrets:
                key: [id]
                merge: pinned
                columns: {id: integer, email: text}
            """
        #expect(throws: ConfigError(file: nil, line: 5, problem: "pinned table secrets needs a text column home_region")) {
            try GeorepConfig.parse(yaml: yaml)
        }
    }

    @Test func refusesYAMLSyntaxErrorsWithTheirLine() {
        do {
            _ = try GeorepConfig.parse(yaml: "topology: active-active\nregions: [\n  - x\n", file: "bad.yaml")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.file == "bad.yaml")
            #expect(error.line != nil)
            #expect(error.problem.hasPrefix("not valid YAML"))
        }
    }

    @Test func loadNamesAMissingFile() {
        #expect(throws: ConfigError.self) { try GeorepConfig.load(path: "/nonexistent/georep.yaml") }
        do {
            _ = try GeorepConfig.load(path: "/nonexistent/georep.yaml")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/georep.yaml: cannot read the file"))
        }
    }
}
