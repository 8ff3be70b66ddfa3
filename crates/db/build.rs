// Rebuild when a migration is added or changed: `sqlx::migrate!` embeds the directory at
// compile time and would otherwise miss a new file.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=sql");
}
