/*
 * RocksDB's options, and the sizes that decide the store's memory and disk beyond the data
 * itself, all derived from one memory budget (store_config.memory_budget_bytes):
 *
 *   block cache      budget / 4   uncompressed data blocks read back (point reads)
 *   write buffers    budget / 2   memtables of every column family together
 *                                 (db_write_buffer_size); the cache and tasks families get
 *                                 1/8 of it per memtable, the six small ones 1/32, and
 *                                 each holds at most two (one filling, one flushing), so
 *                                 their sum stays within 7/8 of it even when flushes lag
 *   WAL cap          = write buffers  (disk) older memtables are flushed once the WAL
 *                                 outgrows it, so a crash replays at most this much
 *
 * The last quarter of the budget is left for what RocksDB sizes by itself: index and filter
 * blocks of the table readers (~10 bytes per cached answer; they stay out of the block
 * cache, where data blocks kept evicting them), iterators and a flush's overlap. Each size
 * can also be set alone; 0 keeps the derived one.
 *
 * The rest is fixed: LZ4 on every level (ZSTD at the bottom saved ~27% of disk, 516
 * instead of 708 bytes per ~1 KB answer, but its compactions took ~20% of a core during a
 * 1M-answer fill on a 2-core machine and slowed reads: CPU is the scarcer resource here);
 * full bloom filters (10 bits/key) on the point-read families (cache, tasks, sessions,
 * meta); dynamic level sizes; two background jobs; RocksDB's info LOG kept to 3 files of
 * 16 MiB; WAL on, fsync per batch only with sync_writes.
 */
#include "server/store/store_internal.h"

#define MIB (1ull << 20)
#define DEFAULT_BUDGET (256 * MIB)
#define MEMTABLE_MIN (64u << 10)
#define LOG_FILE_BYTES (16u << 20)
#define LOG_FILES 3

void store_sizes_derive(const store_config *cfg, store_sizes *out) {
    out->memory_budget_bytes = cfg->memory_budget_bytes ? cfg->memory_budget_bytes : DEFAULT_BUDGET;
    uint64_t b = out->memory_budget_bytes;
    out->block_cache_bytes = cfg->block_cache_bytes ? cfg->block_cache_bytes : b / 4;
    out->write_buffer_bytes = cfg->write_buffer_bytes ? cfg->write_buffer_bytes : b / 2;
    out->wal_max_bytes = cfg->wal_max_bytes ? cfg->wal_max_bytes : out->write_buffer_bytes;
    uint64_t w = out->write_buffer_bytes;
    out->big_memtable_bytes = w / 8 > MEMTABLE_MIN ? w / 8 : MEMTABLE_MIN;
    out->small_memtable_bytes = w / 32 > MEMTABLE_MIN ? w / 32 : MEMTABLE_MIN;
}

static rocksdb_block_based_table_options_t *table_options(store *s, bool bloom) {
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, s->block_cache);
    rocksdb_block_based_options_set_format_version(t, 5);
    /* Index and filter blocks stay in the table readers (RocksDB's default), not in the
     * block cache, where data blocks kept evicting them (measured: each eviction cost a
     * re-read and decompression on the next point read). They are small: ~1.3 bytes of
     * filter per key. */
    if (bloom)
        rocksdb_block_based_options_set_filter_policy(t,
                                                      rocksdb_filterpolicy_create_bloom_full(10));
    return t;
}

static rocksdb_options_t *cf_options(store *s, enum store_cf cf) {
    rocksdb_options_t *o = rocksdb_options_create_copy(s->db_opts);
    bool point = cf == CF_META || cf == CF_CACHE || cf == CF_TASKS || cf == CF_SESSIONS;
    rocksdb_options_set_block_based_table_factory(o, point ? s->bbt_point : s->bbt_scan);
    bool big = cf == CF_CACHE || cf == CF_TASKS;
    rocksdb_options_set_write_buffer_size(
        o, (size_t)(big ? s->sizes.big_memtable_bytes : s->sizes.small_memtable_bytes));
    rocksdb_options_set_max_write_buffer_number(o, 2);
    return o;
}

void store_options_build(store *s) {
    s->block_cache = rocksdb_cache_create_lru((size_t)s->sizes.block_cache_bytes);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_max_total_wal_size(o, s->sizes.wal_max_bytes);
    rocksdb_options_set_db_write_buffer_size(o, (size_t)s->sizes.write_buffer_bytes);
    rocksdb_options_set_keep_log_file_num(o, LOG_FILES);
    rocksdb_options_set_max_log_file_size(o, LOG_FILE_BYTES);
    s->db_opts = o;
    s->bbt_point = table_options(s, true);
    s->bbt_scan = table_options(s, false);
    for (int i = 0; i < CF_COUNT; i++)
        s->cf_opts[i] = cf_options(s, (enum store_cf)i);
    s->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts, s->cfg.sync_writes);
    s->ropts = rocksdb_readoptions_create();
}

void store_options_free(store *s) {
    for (int i = 0; i < CF_COUNT; i++)
        if (s->cf_opts[i])
            rocksdb_options_destroy(s->cf_opts[i]);
    if (s->db_opts)
        rocksdb_options_destroy(s->db_opts);
    if (s->bbt_point)
        rocksdb_block_based_options_destroy(s->bbt_point);
    if (s->bbt_scan)
        rocksdb_block_based_options_destroy(s->bbt_scan);
    if (s->block_cache)
        rocksdb_cache_destroy(s->block_cache);
    if (s->wopts)
        rocksdb_writeoptions_destroy(s->wopts);
    if (s->ropts)
        rocksdb_readoptions_destroy(s->ropts);
}
