//! `cascade [redis.conf|-] [--directive value ...]`: parses the command line
//! and configuration like `redis-server`, then runs the server.

use cascade::alloc::CountingAlloc;
use cascade::config::{self, Invocation};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let invocation = match config::load_from_args(&args, &mut std::io::stdin()) {
        Ok(i) => i,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(1);
        }
    };
    match invocation {
        Invocation::Version => {
            println!(
                "Cascade server v={} (Redis {} compatible) bits={}",
                env!("CARGO_PKG_VERSION"),
                cascade::cmd::connection::REDIS_VERSION,
                usize::BITS
            );
        }
        Invocation::Help => print!("{}", USAGE),
        Invocation::Run(config) => std::process::exit(cascade::server::run(config)),
    }
}

const USAGE: &str = "Usage: ./cascade [/path/to/redis.conf] [options] [-]
       ./cascade - (read config from stdin)
       ./cascade -v or --version
       ./cascade -h or --help

Examples:
       ./cascade (run the server with default conf)
       ./cascade /etc/redis/6379.conf
       ./cascade --port 7777
       ./cascade --port 7777 --replicaof 127.0.0.1 8888
       ./cascade /etc/myredis.conf --loglevel verbose -
       ./cascade /etc/myredis.conf --loglevel verbose
";
