// A C++ method, for the symbolizer's demangling test.
//
// Built by tests/symbolize.rs at test time:
//     c++ -O2 -g -o demangle assets/demangle.cpp
namespace shapes {
struct Box {
    int w;
    __attribute__((noinline)) int area(int h) const;
};
int Box::area(int h) const { return w * h; }
} // namespace shapes

int main(int argc, char **)
{
    shapes::Box b{argc + 2};
    volatile int h = 3;
    return b.area(h) & 0x7f;
}
