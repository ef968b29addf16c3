// The web page is embedded at build time (rust-embed); rebuild when anything under web/
// changes, including files added after the last build.
fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
