from django.urls import path

from liaison.views import accounts, health, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", accounts.login_view, name="login"),
    path("login/otp/", accounts.login_otp_view, name="login-otp"),
    path("logout/", accounts.logout_view, name="logout"),
    path("healthz", health.healthz, name="healthz"),
]
