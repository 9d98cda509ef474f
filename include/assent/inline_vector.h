// InlineVector<T, N>: a vector that keeps up to N elements inside the object and only
// allocates beyond that. Decisions use it for their parties so that deciding for one to four
// parties never touches the heap. T must be trivially copyable.
#ifndef ASSENT_INLINE_VECTOR_H_
#define ASSENT_INLINE_VECTOR_H_

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>

namespace assent {

template <typename T, size_t N>
class InlineVector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  InlineVector() = default;
  InlineVector(std::initializer_list<T> init) {
    for (const T& v : init) push_back(v);
  }
  InlineVector(const InlineVector& o) { Assign(o); }
  InlineVector& operator=(const InlineVector& o) {
    if (this != &o) {
      clear();
      Assign(o);
    }
    return *this;
  }
  InlineVector(InlineVector&& o) noexcept { Steal(o); }
  InlineVector& operator=(InlineVector&& o) noexcept {
    if (this != &o) {
      Free();
      Steal(o);
    }
    return *this;
  }
  ~InlineVector() { Free(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return heap_ ? heap_ : reinterpret_cast<T*>(inline_); }
  const T* data() const { return heap_ ? heap_ : reinterpret_cast<const T*>(inline_); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T& back() { return data()[size_ - 1]; }
  void clear() { size_ = 0; }
  // Drops the elements from index n on. REQUIRES: n <= size().
  void truncate(size_t n) { size_ = n; }

  void reserve(size_t n) {
    if (n <= capacity()) return;
    T* mem = static_cast<T*>(std::malloc(n * sizeof(T)));
    if (!mem) throw std::bad_alloc();
    std::memcpy(static_cast<void*>(mem), data(), size_ * sizeof(T));
    std::free(heap_);
    heap_ = mem;
    heap_capacity_ = n;
  }
  void push_back(const T& v) {
    if (size_ == capacity()) reserve(capacity() * 2);
    data()[size_++] = v;
  }

 private:
  size_t capacity() const { return heap_ ? heap_capacity_ : N; }
  void Assign(const InlineVector& o) {
    reserve(o.size_);
    std::memcpy(static_cast<void*>(data()), o.data(), o.size_ * sizeof(T));
    size_ = o.size_;
  }
  void Steal(InlineVector& o) {
    size_ = o.size_;
    if (o.heap_) {
      heap_ = o.heap_;
      heap_capacity_ = o.heap_capacity_;
      o.heap_ = nullptr;
    } else {
      std::memcpy(inline_, o.inline_, size_ * sizeof(T));
    }
    o.size_ = 0;
  }
  void Free() {
    std::free(heap_);
    heap_ = nullptr;
    size_ = 0;
  }

  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* heap_ = nullptr;
  size_t heap_capacity_ = 0;
  size_t size_ = 0;
};

}  // namespace assent

#endif  // ASSENT_INLINE_VECTOR_H_
