// The installed Debian kernel for the bench scripts (whatever ABI release apt installed), found
// as the tests find it; without one, exit 2 with the message naming the Debian package to install.
import path from "node:path";

export async function installedDebianKernel(repo) {
  const { debianKernel } = await import(path.join(repo, "dist/test/helpers/debian-kernel.js"));
  try {
    return debianKernel();
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
}
