// The main of the corio-layer-* executables (CMakeLists.txt): they exist
// to be linked, each from one layer's objects and those of the layers
// below, so that a reference to a higher layer is an undefined symbol.
int main() {
  return 0;
}
