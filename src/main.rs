fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    confide::cli::main()
}

/// glibc gives each thread that allocates its own arena, up to eight per core, and memory
/// freed in one arena is not reused by another: with twenty uploads on twenty blocking
/// threads that held some 30 MB more than needed (`cargo bench --bench attachments`). One
/// arena per core keeps contention low and the resident set small. `MALLOC_ARENA_MAX` in
/// the environment still decides, when set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a tunable; it runs before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(1, 64) as libc::c_int);
        }
    }
}
